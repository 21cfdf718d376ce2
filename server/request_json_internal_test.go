package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestWriteBytesJSONMatchesEncodingJSON: the hand-written answers of
// generate, encrypt and decrypt are byte for byte, headers included, what
// writeJSON (encoding/json) answers for the api response structs.
func TestWriteBytesJSONMatchesEncodingJSON(t *testing.T) {
	values := [][]byte{nil, {}, {0}, {0xff, 0xfe}, []byte("abc"), bytes.Repeat([]byte{0xfb}, 1000)}
	check := func(name string, want any, write func(w http.ResponseWriter)) {
		t.Helper()
		a, b := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(a, http.StatusOK, want)
		write(b)
		if a.Body.String() != b.Body.String() || a.Code != b.Code {
			t.Fatalf("%s: got %d %q, encoding/json %d %q", name, b.Code, b.Body, a.Code, a.Body)
		}
		for _, k := range []string{"Content-Type", "Content-Length"} {
			if strings.Join(a.Header()[k], ",") != strings.Join(b.Header()[k], ",") {
				t.Fatalf("%s: %s %q, encoding/json %q", name, k, b.Header()[k], a.Header()[k])
			}
		}
	}
	for _, p := range values {
		check("encrypt", api.EncryptKeyResponse{Ciphertext: p}, func(w http.ResponseWriter) { writeBytesJSON(w, ciphertextField, p) })
		check("decrypt", api.DecryptKeyResponse{Plaintext: p}, func(w http.ResponseWriter) { writeBytesJSON(w, plaintextField, p) })
		for _, c := range values {
			check("generate", api.GenerateKeyResponse{Plaintext: p, Ciphertext: c}, func(w http.ResponseWriter) { writeBytesJSON(w, generateKeyFields, p, c) })
		}
	}
}

// TestReadBodyByContentLength: a body read into a buffer of its announced
// length reads like io.ReadAll, and a short one is an error.
func TestReadBodyByContentLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(`{"a":1}`))
	b, err := readBody(r)
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("readBody = %q, %v", b, err)
	}
	r = httptest.NewRequest(http.MethodPut, "/", strings.NewReader(`{"a":1}`))
	r.ContentLength = 20
	if _, err := readBody(r); err == nil {
		t.Fatal("a body shorter than its Content-Length was read without error")
	}
}
