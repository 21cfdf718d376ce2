package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/minkms/minkms/api"
)

// slowDecode is the full path of a native body: strictJSON, then a decoder
// that refuses unknown fields and trailing data.
func slowDecode(body []byte, v any) bool {
	if strictJSON(body, v) != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// slowErr is slowDecode as an error, for sameDecoding.
func slowErr(body []byte, v any) error {
	if !slowDecode(body, v) {
		return errors.New("refused")
	}
	return nil
}

// sameDecoding fails if the reference decoder ref refused body (refErr)
// or decoded it into want otherwise than path decoded it into got.
func sameDecoding(t *testing.T, path, ref string, body []byte, got, want any, refErr error) {
	t.Helper()
	if refErr != nil {
		t.Errorf("%T: %s took %q, which %s refuses: %v", got, path, body, ref, refErr)
	} else if !reflect.DeepEqual(got, want) {
		t.Errorf("%T: %q decoded to %+v by %s, to %+v by %s", got, body, got, path, want, ref)
	}
}

// fastTypes are the request bodies the fast path sees most.
var fastTypes = []func() any{
	func() any { return new(api.GenerateKeyRequest) },
	func() any { return new(api.EncryptKeyRequest) },
	func() any { return new(api.DecryptKeyRequest) },
	func() any { return new(api.HMACRequest) },
	func() any { return new(api.RewrapRequest) },
	func() any { return new(api.CreateKeyRequest) },
	func() any { return new(api.BatchRequest) },
	func() any { return new(api.Policy) },
	func() any { return new(api.CreateIdentityRequest) },
}

// anyTypes take any object: only the duplicate keys are refused.
var anyTypes = []func() any{
	func() any { return new(map[string]any) },
}

// checkFast fails if decodeFast accepts a body the full path refuses or
// decodes it differently, for any of the types; it reports whether it
// took the body for one of fastTypes.
func checkFast(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	for i, newV := range append(fastTypes, anyTypes...) {
		fastV, slowV := newV(), newV()
		if !decodeFast(body, fastV) {
			continue
		}
		fast = fast || i < len(fastTypes)
		sameDecoding(t, "the fast path", "the full path", body, fastV, slowV, slowErr(body, slowV))
	}
	return fast
}

// TestDecodeFast: the fast path of native bodies takes the usual bodies of
// the key operations and decodes them exactly as the full path, and
// leaves everything else to the full path, which refuses or describes it.
func TestDecodeFast(t *testing.T) {
	for _, body := range []string{
		`{}`, ` { } `,
		`{"context":"eA==","length":16}`,
		"{\n  \"plaintext\": \"aGVsbG8=\",\n  \"context\": \"eA==\"\n}\n",
		`{"ciphertext":"eyJhIjoxfQ==","context":null}`,
		`{"message":"aGVsbG8="}`,
		`{"algorithm":"AES256-GCM"}`,
		`{"algorithm":"a \"quoted\" \\ name"}`,
		`{"items":[{"op":"generate","name":"k","context":"eA=="},{"op":"hmac","name":"k","message":"eA=="}]}`,
		`{"items":[]}`,
		`{"allow":{"key:describe":["a*","b*"],"key:generate":["*"]},"deny":{}}`,
	} {
		if !checkFast(t, []byte(body)) {
			t.Errorf("the fast path took none of the types for %q", body)
		}
	}
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"context":"eA=="`, `{"context":"eA=="}x`, `{"context":"eA=="} {}`,
		`{"context":"eA==","context":"eQ=="}`, // duplicate
		`{"Context":"eA=="}`,                  // another case
		`{"unknown":1}`,
		`{"cont\u0065xt":"eA=="}`, // an escaped key
		`{"context":{"a":1}}`,     // nested
		`{"context":["eA=="]}`,
		`{"context":"!!"}`, // not base64
		`{"length":"16"}`,  // a string for a number
		`{"length":16,}`,   // trailing comma
		`{"length" 16}`,    // no colon
		`{"context":"eA==" "length":16}`,
		`{"items":[{"op":"generate","op":"hmac"}]}`,          // duplicate, nested
		`{"items":[{"Op":"generate"}]}`,                      // another case, nested
		`{"items":[{"op":"generate","unknown":1}]}`,          // unknown, nested
		`{"allow":{"key:describe":["*"],"key:describe":[]}}`, // duplicate map key
		`{"items":[{"op":"generate"},]}`,                     // trailing comma
		`{"items":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}`,  // too deep for the fast path
		"{\"context\":\"\x01\"}",                             // a control character in a string
	} {
		if checkFast(t, []byte(body)) {
			t.Errorf("the fast path took %q", body)
		}
	}
}

// FuzzDecodeFast: whatever the body, the fast path never takes one the
// full path refuses, nor decodes one differently.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{`{}`, `{"context":"eA==","length":16}`, `{"plaintext":"aGVsbG8=","context":"eA=="}`,
		`{"context":"eA==","context":"eQ=="}`, `{"algorithm":"x\"y"}`, `{"length":1e2}`,
		`{"items":[{"op":"generate","name":"k"}]}`, `{"allow":{"a":["*"]}}`, `{"a":{"b":[1,{"c":null}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFast(t, body)
	})
}
