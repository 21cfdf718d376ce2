package server

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// decodeFlat decodes the bodies of the key operations — a flat object of
// base64 byte strings, integers and plain strings, such as
// {"context":"…","length":32} — without encoding/json, whose reflection,
// validation pass and allocations cost more than the rest of reading such
// a request. It takes only what it decodes exactly as json.Unmarshal does
// and what the strict native rules accept: an object whose keys are
// fields of v's struct spelled as their tags, each once, whose values are
// strings without escape sequences (base64 for []byte, valid UTF-8 for a
// string) or integers in plain notation that fit, and nothing after it.
// For anything else — null, true, false, floats, escapes, nesting, an
// unknown or repeated key, bad base64 — it reports false having changed
// nothing in v, and the caller decodes the body the general way, which
// accepts or describes it. FuzzDecodeFlat holds it to json.Unmarshal.
func decodeFlat(body []byte, v any) bool {
	p := flatPlanOf(reflect.TypeOf(v))
	if p == nil {
		return false
	}
	// Decoded values wait here until the whole body has been read, so
	// that a body refused half-way leaves v as it was.
	var vals [maxFlatFields]flatValue
	var seen uint64
	sc := fastScanner{b: body}
	sc.skipSpace()
	if sc.i >= len(sc.b) || sc.b[sc.i] != '{' {
		return false
	}
	sc.i++
	sc.skipSpace()
	ok := false
	if sc.i < len(sc.b) && sc.b[sc.i] == '}' {
		sc.i++
		ok = true
	}
	for !ok {
		sc.skipSpace()
		if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
			break
		}
		key, plain, isStr := sc.str()
		if !isStr || !plain {
			break
		}
		f := p.field(key)
		if f < 0 || seen&(1<<f) != 0 {
			break
		}
		seen |= 1 << f
		sc.skipSpace()
		if sc.i >= len(sc.b) || sc.b[sc.i] != ':' {
			break
		}
		sc.i++
		sc.skipSpace()
		if !sc.flatValue(p.fields[f].kind, p.fields[f].bits, &vals[f]) {
			break
		}
		sc.skipSpace()
		if sc.i >= len(sc.b) {
			break
		}
		if sc.b[sc.i] == '}' {
			sc.i++
			ok = true
			break
		}
		if sc.b[sc.i] != ',' {
			break
		}
		sc.i++
	}
	if ok {
		sc.skipSpace()
		ok = sc.i == len(sc.b)
	}
	if !ok {
		for i := range p.fields {
			clear(vals[i].b) // decoded plaintexts and keys
		}
		return false
	}
	rv := reflect.ValueOf(v).Elem()
	for i, f := range p.fields {
		if seen&(1<<i) == 0 {
			continue
		}
		fv := rv.Field(f.index)
		switch f.kind {
		case reflect.Slice:
			fv.SetBytes(vals[i].b)
		case reflect.String:
			fv.SetString(vals[i].s)
		default:
			fv.SetInt(vals[i].n)
		}
	}
	return true
}

// maxFlatFields bounds the fields of a flat type; a bit per field marks
// the keys seen.
const maxFlatFields = 8

// flatValue is one decoded value of decodeFlat.
type flatValue struct {
	b []byte
	s string
	n int64
}

// flatValue reads the value at sc.i into val as kind.
func (sc *fastScanner) flatValue(kind reflect.Kind, bits int, val *flatValue) bool {
	if sc.i >= len(sc.b) {
		return false
	}
	if kind == reflect.Slice || kind == reflect.String {
		if sc.b[sc.i] != '"' {
			return false
		}
		raw, plain, ok := sc.str()
		if !ok || !plain {
			return false
		}
		if kind == reflect.String {
			if !utf8.Valid(raw) {
				return false // json.Unmarshal replaces invalid bytes
			}
			val.s = string(raw)
			return true
		}
		// As encoding/json decodes a []byte: a non-nil slice, empty for "".
		b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(b, raw)
		if err != nil {
			clear(b)
			return false
		}
		val.b = b[:n]
		return true
	}
	// An integer: -?(0|[1-9][0-9]*), as JSON writes one, that fits the field.
	start := sc.i
	if sc.b[sc.i] == '-' {
		sc.i++
	}
	digits := sc.i
	for sc.i < len(sc.b) && sc.b[sc.i] >= '0' && sc.b[sc.i] <= '9' {
		sc.i++
	}
	if sc.i == digits || (sc.b[digits] == '0' && sc.i-digits > 1) {
		return false
	}
	if sc.i < len(sc.b) {
		switch c := sc.b[sc.i]; {
		case isSpace(c), c == ',', c == '}':
		default:
			return false // a fraction, an exponent or garbage
		}
	}
	n, err := strconv.ParseInt(string(sc.b[start:sc.i]), 10, bits)
	if err != nil {
		return false
	}
	val.n = n
	return true
}

// flatPlan is how decodeFlat fills a struct type: its fields by JSON name.
type flatPlan struct {
	fields []flatField
}

type flatField struct {
	name  string
	index int
	kind  reflect.Kind // Slice ([]byte), String or Int/Int64
	bits  int          // an integer's size
}

func (p *flatPlan) field(name []byte) int {
	for i := range p.fields {
		if p.fields[i].name == string(name) {
			return i
		}
	}
	return -1
}

// flatPlans caches flatPlanOf per type (reflect.Type → *flatPlan, nil
// when the type is not flat).
var flatPlans sync.Map

// flatPlanOf returns the plan of *T for a flat struct T: only exported
// fields of type []byte, string, int or int64, each with a plain JSON
// name (a tag of a name and at most ",omitempty"), none embedded, at most
// maxFlatFields. Any other type has none: decodeFlat leaves it to
// encoding/json.
func flatPlanOf(t reflect.Type) *flatPlan {
	if t == nil {
		return nil
	}
	if p, ok := flatPlans.Load(t); ok {
		return p.(*flatPlan)
	}
	p := makeFlatPlan(t)
	flatPlans.Store(t, p)
	return p
}

func makeFlatPlan(t reflect.Type) *flatPlan {
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	st := t.Elem()
	if st.NumField() > maxFlatFields {
		return nil
	}
	p := &flatPlan{}
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous || !f.IsExported() {
			return nil
		}
		tag, ok := f.Tag.Lookup("json")
		if !ok {
			return nil
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || (opts != "" && opts != "omitempty") || !plainJSONName(name) {
			return nil
		}
		kind := f.Type.Kind()
		switch {
		case kind == reflect.Slice && f.Type.Elem().Kind() == reflect.Uint8 && f.Type.Elem().PkgPath() == "":
		case kind == reflect.String && f.Type.PkgPath() == "":
		case (kind == reflect.Int || kind == reflect.Int64) && f.Type.PkgPath() == "":
		default:
			return nil
		}
		for _, g := range p.fields {
			if strings.EqualFold(g.name, name) {
				return nil // names that json's case folding could confuse
			}
		}
		p.fields = append(p.fields, flatField{name: name, index: i, kind: kind, bits: int(f.Type.Size()) * 8})
	}
	return p
}

// plainJSONName reports whether a tag's name is one a body spells without
// escapes: letters, digits and '_', '-'.
func plainJSONName(name string) bool {
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
