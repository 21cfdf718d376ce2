package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/minkms/minkms/kms"
)

// maxPrefix is the longest list prefix: that of the longest name.
const maxPrefix = 80

// param returns the path parameter key, unescaped. validateParams has
// checked it already.
func param(r *http.Request, key string) string {
	v, err := unescapeParam(r, chi.URLParam(r, key))
	if err != nil {
		return chi.URLParam(r, key)
	}
	return v
}

// unescapeParam decodes a path parameter exactly once. chi routes on
// r.URL.RawPath when the request has one (the path held an escape that is
// not the default encoding) and on the already decoded r.URL.Path
// otherwise, so only in the first case is the parameter still escaped.
// Decoding a decoded one again would turn the name "a%41" into "aA".
func unescapeParam(r *http.Request, v string) (string, error) {
	if r.URL.RawPath == "" {
		return v, nil
	}
	return url.PathUnescape(v)
}

// validateParam checks one path parameter by its role.
func validateParam(r *http.Request, key, raw string) error {
	v, err := unescapeParam(r, raw)
	if err != nil {
		return kms.Invalidf("invalid %s: malformed escape", key)
	}
	switch key {
	case "name", "enclave":
		return kms.ValidName(v)
	case "identity":
		_, err := kms.ParseIdentity(v)
		return err
	case "version":
		if _, err := parseVersion(v); err != nil {
			return err
		}
	case "prefix":
		return validPrefix(v)
	}
	return nil
}

func parseVersion(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, kms.Invalidf("invalid key version %q: want a positive number", s)
	}
	return n, nil
}

// listPrefix turns a KES list pattern ("", "*" or "abc*") into a prefix.
func listPrefix(pattern string) string {
	return strings.TrimSuffix(pattern, "*")
}

// validPrefix accepts the start of a name: the characters of names, at
// most 80 of them, and a trailing "*" as KES clients send.
func validPrefix(pattern string) error {
	p := listPrefix(pattern)
	if len(p) > maxPrefix {
		return kms.Invalidf("invalid prefix: longer than %d characters", maxPrefix)
	}
	for _, c := range []byte(p) {
		if !nameChar(c) {
			return kms.Invalidf("invalid prefix: character %q is not allowed (use A-Z a-z 0-9 _ . -)", c)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// listOptions reads ?prefix=, ?continue= and ?limit=.
func listOptions(r *http.Request, prefix string) (kms.ListOptions, error) {
	q := r.URL.Query()
	if p := q.Get("prefix"); p != "" {
		prefix = p
	}
	if err := validPrefix(prefix); err != nil {
		return kms.ListOptions{}, err
	}
	o := kms.ListOptions{Prefix: listPrefix(prefix), ContinueAt: q.Get("continue")}
	if o.ContinueAt != "" {
		if err := kms.ValidName(o.ContinueAt); err != nil {
			return kms.ListOptions{}, kms.Invalidf("invalid continue: %v", err)
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return kms.ListOptions{}, kms.Invalidf("invalid limit %q: want a number from 0 to 1000", s)
		}
		o.Limit = n
	}
	return o, nil
}

// decodeJSON decodes the request body into v. An empty body leaves v
// alone if optional, else it is an error. Native routes refuse unknown
// fields, a null body, duplicate fields and field names in another case
// (strictJSON); KES routes take all of these, as KES does, and KES clients
// may send more. A body that
// is too large is errBodyTooLarge; anything malformed an Invalid error.
func decodeJSON(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge
		}
		return kms.Invalidf("reading request body: %v", err)
	}
	defer clear(body) // bodies carry plaintexts and key material
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return kms.Invalidf("missing request body: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if isNative(r.Context()) {
		if err := strictJSON(body, v); err != nil {
			return err
		}
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return kms.Invalidf("malformed request body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return kms.Invalidf("malformed request body: unexpected data after the JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonType(typ.Type.String()), typ.Value)
		}
		return fmt.Sprintf("want a JSON object, not %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	if strings.Contains(msg, "illegal base64") {
		return "a byte field is not valid base64"
	}
	return "invalid JSON"
}

func jsonType(goType string) string {
	switch goType {
	case "[]uint8":
		return "a base64 string"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int":
		return "a number"
	}
	return "a " + goType
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	// Two writes, not append(body, '\n'): an append may copy the answer,
	// which holds plaintexts and data keys, to a buffer nobody clears.
	w.Write(body)
	w.Write([]byte{'\n'})
	clear(body)
}
