package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/minkms/minkms/api"
)

// flatTestBody has every kind of field decodeFlat fills.
type flatTestBody struct {
	Name  string `json:"name"`
	Count int    `json:"count,omitempty"`
	Big   int64  `json:"big"`
	Data  []byte `json:"data"`
}

// checkFlat fails if decodeFlat takes a body that the strict native path
// refuses or json.Unmarshal decodes otherwise, or changes v while refusing
// one, for any of the types; it reports whether it took the body for one.
func checkFlat(t *testing.T, body []byte) (took bool) {
	t.Helper()
	types := append([]func() any{func() any { return new(flatTestBody) }}, fastTypes...)
	for _, newV := range types {
		v, strict, lenient := newV(), newV(), newV()
		if !decodeFlat(body, v) {
			if !reflect.DeepEqual(v, newV()) {
				t.Errorf("%T: refused %q but changed v to %+v", v, body, v)
			}
			continue
		}
		took = true
		sameDecoding(t, "decodeFlat", "the strict path", body, v, strict, slowErr(body, strict))
		sameDecoding(t, "decodeFlat", "json.Unmarshal", body, v, lenient, json.Unmarshal(body, lenient))
	}
	return took
}

// TestDecodeFlat: the bodies of the key operations are decoded by hand
// exactly as encoding/json decodes them, and everything else is left to
// encoding/json untouched.
func TestDecodeFlat(t *testing.T) {
	for _, body := range []string{
		`{}`, ` { } `,
		`{"context":"eA==","length":16}`,
		"{\n  \"plaintext\": \"aGVsbG8=\",\n  \"context\": \"eA==\"\n}\n",
		`{"ciphertext":"eyJhIjoxfQ==","context":""}`,
		`{"message":"aGVsbG8="}`,
		`{"algorithm":"AES256-GCM"}`,
		`{"name":"héllo wörld","count":-0,"big":-9223372036854775808,"data":""}`,
	} {
		if !checkFlat(t, []byte(body)) {
			t.Errorf("decodeFlat took none of the types for %q", body)
		}
	}
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"context":"eA=="`, `{"context":"eA=="}x`, `{"context":"eA=="} {}`,
		`{"context":"eA==","context":"eQ=="}`, // duplicate
		`{"Context":"eA=="}`,                  // another case
		`{"unknown":1}`,
		`{"cont\u0065xt":"eA=="}`,          // an escaped key
		`{"name":"a\"b"}`,                  // an escaped value
		`{"name":"\xff"}`,                  // invalid UTF-8
		`{"context":null}`,                 // null leaves the field alone
		`{"context":{"a":1}}`,              // nested
		`{"context":"!!"}`,                 // not base64
		`{"context":"eA"}`,                 // no padding
		`{"length":"16"}`,                  // a string for a number
		`{"length":1e2}`, `{"length":1.0}`, // not an integer's notation
		`{"length":016}`, `{"length":-}`, // not JSON
		`{"big":9223372036854775808}`,     // too large
		`{"length":16,}`, `{"length" 16}`, // malformed
		`{"context":"eA==" "length":16}`,
		"{\"context\":\"\x01\"}", // a control character in a string
		`{"length":true}`,
	} {
		if checkFlat(t, []byte(body)) {
			t.Errorf("decodeFlat took %q", body)
		}
	}
	// Types with anything but flat fields have no plan.
	for _, v := range []any{new(api.BatchRequest), new(api.Policy), new(map[string]any), flatTestBody{}, new(string)} {
		if flatPlanOf(reflect.TypeOf(v)) != nil {
			t.Errorf("%T has a flat plan", v)
		}
	}
}

// FuzzDecodeFlat: whatever the body, decodeFlat never takes one the strict
// path or json.Unmarshal refuses, nor decodes one differently.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range []string{`{}`, `{"context":"eA==","length":16}`, `{"plaintext":"aGVsbG8=","context":"eA=="}`,
		`{"context":"eA==","context":"eQ=="}`, `{"name":"x\"y","big":1}`, `{"length":1e2}`, `{"data":"","count":-12}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFlat(t, body)
	})
}

// BenchmarkDecodeBody compares decoding a data key request's body by hand
// with encoding/json.
//
//	go test -run '^$' -bench DecodeBody -benchmem ./server/
func BenchmarkDecodeBody(b *testing.B) {
	body := []byte(`{"context":"YnVja2V0L29iamVjdA==","length":32}`)
	b.Run("flat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v api.GenerateKeyRequest
			if !decodeFlat(body, &v) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v api.GenerateKeyRequest
			if !decodeFast(body, &v) {
				b.Fatal("refused")
			}
		}
	})
}
