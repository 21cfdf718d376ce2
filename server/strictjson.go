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
		fields = fieldsOf(t)
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

// knownFields caches the JSON field names of the request types
// (reflect.Type → map[string]reflect.Type).
var knownFields sync.Map

// fieldsOf returns jsonFields(t), computed once per type.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := knownFields.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	f := jsonFields(t)
	knownFields.Store(t, f)
	return f
}

// maxFastDepth bounds the nesting decodeFast follows; deeper bodies take
// the full path.
const maxFastDepth = 16

// decodeFast is the fast path of a native body: a single pass over its
// bytes that checks what strictJSON and the decoder's
// DisallowUnknownFields check — no null body, every key of an object
// decoded into a struct a field of it spelled exactly as its tag, no key
// twice in an object, nothing after the value — and then json.Unmarshal,
// without the token walk and the decoder's copy of the body. It reports
// false, having left nothing in v that clearByteFields does not zero, for
// a body it does not take: anything refused, malformed, nested deeper
// than maxFastDepth, or with an escape sequence in a key. The full path
// then decodes or describes it.
func decodeFast(body []byte, v any) bool {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return false
	}
	sc := fastScanner{b: body}
	sc.skipSpace()
	if sc.i >= len(sc.b) || sc.b[sc.i] != '{' {
		return false // null, or not an object: the full path says which
	}
	if !sc.value(t.Elem(), 0) {
		return false
	}
	sc.skipSpace()
	if sc.i != len(sc.b) {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		clearByteFields(v)
		return false
	}
	return true
}

// fastScanner walks a JSON text for decodeFast.
type fastScanner struct {
	b []byte
	i int
}

func (sc *fastScanner) skipSpace() {
	for sc.i < len(sc.b) && isSpace(sc.b[sc.i]) {
		sc.i++
	}
}

// value checks the value at sc.i, to be decoded into t (nil: unknown, as
// under an interface).
func (sc *fastScanner) value(t reflect.Type, depth int) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	sc.skipSpace()
	if sc.i >= len(sc.b) {
		return false
	}
	switch sc.b[sc.i] {
	case '{':
		if depth >= maxFastDepth {
			return false
		}
		return sc.object(t, depth+1)
	case '[':
		if depth >= maxFastDepth {
			return false
		}
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		sc.i++
		sc.skipSpace()
		if sc.i < len(sc.b) && sc.b[sc.i] == ']' {
			sc.i++
			return true
		}
		for {
			if !sc.value(elem, depth+1) {
				return false
			}
			if end, ok := sc.separator(']'); !ok || end {
				return ok
			}
		}
	case '"':
		_, _, ok := sc.str()
		return ok
	}
	// A number or a literal: its syntax is json.Unmarshal's to check.
	for sc.i < len(sc.b) {
		switch c := sc.b[sc.i]; {
		case isSpace(c), c == ',', c == '}', c == ']':
			return true
		case c == '{', c == '[', c == '"':
			return false
		}
		sc.i++
	}
	return true
}

// str skips the string at sc.i and returns its raw bytes, whether it
// holds no escape sequence, and whether it is a string at all.
func (sc *fastScanner) str() (raw []byte, plain, ok bool) {
	start := sc.i + 1
	plain = true
	for sc.i = start; sc.i < len(sc.b); sc.i++ {
		switch c := sc.b[sc.i]; {
		case c == '"':
			sc.i++
			return sc.b[start : sc.i-1], plain, true
		case c == '\\':
			plain = false
			sc.i++
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// object checks the object at sc.i, to be decoded into t.
func (sc *fastScanner) object(t reflect.Type, depth int) bool {
	var fields map[string]reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = fieldsOf(t)
	}
	var mapElem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		mapElem = t.Elem()
	}
	var seenSmall [8]string
	seen := seenSmall[:0]
	var seenMap map[string]bool // past 8 keys
	sc.i++                      // {
	sc.skipSpace()
	if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
		sc.i++
		return true
	}
	for {
		sc.skipSpace()
		if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
			return false
		}
		raw, plain, ok := sc.str()
		if !ok || !plain {
			return false // an escaped key: the full path compares it decoded
		}
		key := string(raw)
		if seenMap != nil {
			if seenMap[key] {
				return false
			}
			seenMap[key] = true
		} else {
			for _, k := range seen {
				if k == key {
					return false
				}
			}
			if len(seen) < cap(seen) {
				seen = append(seen, key)
			} else {
				seenMap = make(map[string]bool, 16)
				for _, k := range seen {
					seenMap[k] = true
				}
				seenMap[key] = true
			}
		}
		ft := mapElem
		if isStruct {
			var known bool
			if ft, known = fields[key]; !known {
				return false
			}
		}
		sc.skipSpace()
		if sc.i >= len(sc.b) || sc.b[sc.i] != ':' {
			return false
		}
		sc.i++
		if !sc.value(ft, depth) {
			return false
		}
		if end, ok := sc.separator('}'); !ok || end {
			return ok
		}
	}
}

// separator reads what follows a value in an array or object: close
// (end) or a comma (more to come); anything else is not ok.
func (sc *fastScanner) separator(close byte) (end, ok bool) {
	sc.skipSpace()
	if sc.i >= len(sc.b) {
		return false, false
	}
	switch sc.b[sc.i] {
	case close:
		sc.i++
		return true, true
	case ',':
		sc.i++
		return false, true
	}
	return false, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
