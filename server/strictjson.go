package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"

	"github.com/minkms/minkms/kms"
)

// The native routes read their bodies strictly; encoding/json alone does
// not. It takes a null body as an empty request, matches field names
// regardless of case ("ALGORITHM" sets algorithm) and lets the last of two
// equal fields win, so a body can mean one thing to a proxy or an audit log
// and another to the node. strictJSON is a pass over the body's tokens,
// before it is decoded, that refuses all three. The KES routes skip it:
// KES clients rely on encoding/json's leniency.

// strictJSON returns an Invalid error if body is null, holds an object with
// the same key twice at any depth, or names a field of v's type in another
// case than its json tag. Anything malformed is left to the decoder, which
// describes it better.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	if tok == nil {
		return kms.Invalidf("malformed request body: want a JSON object, not null")
	}
	problem, err := walkJSON(dec, tok, reflect.TypeOf(v))
	if err != nil {
		return nil // malformed: the decoder reports it
	}
	if problem != "" {
		return kms.Invalidf("malformed request body: %s", problem)
	}
	return nil
}

// walkJSON walks the value that starts with tok, which is to be decoded into
// t (nil if unknown), and returns the first problem it finds.
func walkJSON(dec *json.Decoder, tok json.Token, t reflect.Type) (string, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return "", nil // a scalar; its type is the decoder's to check
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			if p, err := walkJSON(dec, tok, elem); p != "" || err != nil {
				return p, err
			}
		}
		_, err := dec.Token() // ]
		return "", err
	case '{':
		return walkObject(dec, t)
	}
	return "", errors.New("unexpected delimiter")
}

// walkObject walks the members of an object up to its closing brace.
func walkObject(dec *json.Decoder, t reflect.Type) (string, error) {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, ok := tok.(string)
		if !ok {
			return "", errors.New("object key is not a string")
		}
		if seen[key] {
			return "duplicate field " + quoteField(key), nil
		}
		seen[key] = true
		var ft reflect.Type
		switch {
		case fields != nil:
			var known bool
			if ft, known = fields[key]; !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return "unknown field " + quoteField(key) + ": field names are case-sensitive, did you mean " + quoteField(name) + "?", nil
					}
				}
			}
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		if tok, err = dec.Token(); err != nil {
			return "", err
		}
		if p, err := walkJSON(dec, tok, ft); p != "" || err != nil {
			return p, err
		}
	}
	_, err := dec.Token() // }
	return "", err
}

// jsonFields returns the JSON names of the exported fields of struct type t
// and their types, as encoding/json names them (embedded structs
// flattened; a field of the outer struct wins over one of an embedded).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	var embedded []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, f)
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	for _, f := range embedded {
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		for name, typ := range jsonFields(ft) {
			if _, ok := fields[name]; !ok {
				fields[name] = typ
			}
		}
	}
	return fields
}

// quoteField quotes a field name of the body, shortened: the answer must
// not echo a large body back.
func quoteField(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// flatFields caches the JSON field names of the request types decodeFlat
// has seen (reflect.Type → map[string]reflect.Type).
var flatFields sync.Map

// fieldsOf returns jsonFields(t), computed once per type.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := flatFields.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := jsonFields(t)
	flatFields.Store(t, f)
	return f
}

// maxFlatFields bounds the members decodeFlat takes; a request body of the
// key operations has at most a handful.
const maxFlatFields = 8

// decodeFlat is the fast path of a native body: it decodes body into the
// struct v points to if body is one flat JSON object, members with scalar
// values only, whose every key is a field of v's type spelled exactly as
// its tag (no escape sequences) and appears once, followed by nothing but
// white space. Such a body passes strictJSON and DisallowUnknownFields by
// construction, so json.Unmarshal decodes it as the full path would,
// without the token walk and the decoder's copy. It reports false, having
// changed nothing in v that it would not zero, for any other body — a
// nested value, an unknown, repeated or escaped key, a type mismatch,
// anything malformed — which the full path then decodes or describes.
func decodeFlat(body []byte, v any) bool {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return false
	}
	fields := fieldsOf(t.Elem())
	var seen [maxFlatFields]string
	n := 0
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			// "key"
			if i >= len(body) || body[i] != '"' {
				return false
			}
			start := i + 1
			end := start
			for end < len(body) && body[end] != '"' {
				if c := body[end]; c == '\\' || c < 0x20 {
					return false
				}
				end++
			}
			if end >= len(body) {
				return false
			}
			key := body[start:end]
			if _, ok := fields[string(key)]; !ok || n == maxFlatFields {
				return false
			}
			for _, k := range seen[:n] {
				if k == string(key) {
					return false
				}
			}
			seen[n] = string(key)
			n++
			// :
			i = skipSpace(body, end+1)
			if i >= len(body) || body[i] != ':' {
				return false
			}
			// a scalar value
			i = skipSpace(body, i+1)
			if i >= len(body) {
				return false
			}
			switch body[i] {
			case '{', '[':
				return false
			case '"':
				i++
				for i < len(body) && body[i] != '"' {
					if body[i] == '\\' {
						i++
					}
					i++
				}
				if i >= len(body) {
					return false
				}
				i++
			default:
				for i < len(body) && !isSpace(body[i]) && body[i] != ',' && body[i] != '}' {
					i++
				}
			}
			// , or }
			i = skipSpace(body, i)
			if i >= len(body) {
				return false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		clearByteFields(v)
		return false
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}
