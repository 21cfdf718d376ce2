package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
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
	body, err := readBody(r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) { // cut off (stall.go)
			return errBodyTimeout
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
	// The bodies of the key operations, which the strict and the lenient
	// rules both accept as they are: decoded by hand (flatjson.go).
	if decodeFlat(body, v) {
		return nil
	}
	native := isNative(r.Context())
	if !native {
		// A KES route's body: json.Unmarshal accepts exactly the bodies
		// the Decoder and the check for trailing data below do, without
		// the Decoder's copy of the body. An error is described by
		// decoding again below, after zeroing what the first pass decoded
		// (the second allocates new byte slices).
		if json.Unmarshal(body, v) == nil {
			return nil
		}
		clearByteFields(v)
	}
	if native && decodeFast(body, v) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if native {
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

// clearByteFields zeroes the []byte fields of the struct v points to.
func clearByteFields(v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return
	}
	rv = rv.Elem()
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8 && f.CanInterface() {
			clear(f.Bytes())
		}
	}
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

// readBody reads the whole request body, into a buffer of the announced
// Content-Length when there is one (limitBody has bounded it), so that a
// small body is one allocation rather than io.ReadAll's growing buffers.
func readBody(r *http.Request) ([]byte, error) {
	defer info(r.Context()).bodyDone.Store(true)
	n := r.ContentLength
	if n <= 0 || n > MaxRequestBody {
		return io.ReadAll(r.Body)
	}
	body := make([]byte, n, n+1)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		clear(body)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // announced, never sent
		}
		return nil, err
	}
	// Read on to the end as io.ReadAll would: net/http stops a body at its
	// Content-Length, so this is EOF, but a reader that did not would
	// otherwise leave data unread.
	var one [1]byte
	if m, err := r.Body.Read(one[:]); m > 0 || (err != nil && !errors.Is(err, io.EOF)) {
		clear(body)
		if err == nil {
			err = errors.New("request body longer than its Content-Length")
		}
		return nil, err
	}
	return body, nil
}

// The JSON content type, shared by every answer: net/http only reads a
// header's values.
var contentTypeJSON = []string{"application/json"}

// setJSONHeaders sets the headers of a JSON answer of n bytes, by their
// canonical names (no Header.Set canonicalisation per request).
func setJSONHeaders(w http.ResponseWriter, n int) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(n)}
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"message":"internal error"}`)
	}
	setJSONHeaders(w, len(body)+1)
	w.WriteHeader(status)
	// Two writes, not append(body, '\n'): an append may copy the answer,
	// which holds plaintexts and data keys, to a buffer nobody clears.
	w.Write(body)
	w.Write([]byte{'\n'})
	clear(body)
}

// writeBytesJSON answers, with 200, the JSON object of the byte fields
// names[i]: values[i] exactly as encoding/json writes a struct of []byte
// fields (standard base64, null for nil), without its reflection: the
// answers of generate, encrypt and decrypt. The names need no escaping.
func writeBytesJSON(w http.ResponseWriter, names []string, values ...[]byte) {
	n := 2 + 1 // {} and the newline
	for i, v := range values {
		n += len(names[i]) + 3 + 1 // "name": and a comma
		if v == nil {
			n += 4
		} else {
			n += base64.StdEncoding.EncodedLen(len(v)) + 2
		}
	}
	body := make([]byte, 0, n)
	body = append(body, '{')
	for i, v := range values {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, '"')
		body = append(body, names[i]...)
		body = append(body, '"', ':')
		if v == nil {
			body = append(body, "null"...)
			continue
		}
		body = append(body, '"')
		body = base64.StdEncoding.AppendEncode(body, v)
		body = append(body, '"')
	}
	body = append(body, '}', '\n')
	setJSONHeaders(w, len(body))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	clear(body) // plaintexts and data keys
}

var (
	generateKeyFields = []string{"plaintext", "ciphertext"}
	ciphertextField   = []string{"ciphertext"}
	plaintextField    = []string{"plaintext"}
)
