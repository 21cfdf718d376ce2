package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
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

// TestDecodeJSONKESFastPath: on KES routes decodeJSON's json.Unmarshal
// fast path accepts, decodes and refuses (with the same message) exactly
// what the Decoder with the check for trailing data does.
func TestDecodeJSONKESFastPath(t *testing.T) {
	reference := func(body []byte, v any) error {
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(v); err != nil {
			return kms.Invalidf("malformed request body: %s", jsonProblem(err))
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return kms.Invalidf("malformed request body: unexpected data after the JSON object")
		}
		return nil
	}
	for _, body := range []string{
		`{"context":"YnVja2V0"}`, ` {"context":"YnVja2V0","length":16} `, `{"Context":"YQ==","LENGTH":8}`,
		`{"context":"YQ==","context":"Yg=="}`, `{"context":"YQ==","unknown":[1,{"a":null}]}`, `null`, `{}`,
		`{} {}`, `{"a":1}x`, `{"a":1`, `{"length":"x"}`, `{"context":"!!"}`, `[1]`, `"s"`, `{"length":1e3}`,
		`{"context":null}`, "{\"context\":\"YQ==\"}\n\n", `{"length":-1}`,
	} {
		var got, want api.GenerateKeyRequest
		r := httptest.NewRequest(http.MethodPut, "/v1/key/generate/k", strings.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{}))
		gotErr := decodeJSON(r, &got, false)
		wantErr := reference([]byte(body), &want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%q: error %v, the Decoder's %v", body, gotErr, wantErr)
		}
		if wantErr == nil && (!bytes.Equal(got.Context, want.Context) || got.Length != want.Length) {
			t.Errorf("%q: decoded %+v, the Decoder %+v", body, got, want)
		}
	}
}

// TestClearByteFields: what the fast path decoded before failing is zeroed.
func TestClearByteFields(t *testing.T) {
	req := api.EncryptKeyRequest{Plaintext: []byte("secret"), Context: []byte("ctx")}
	clearByteFields(&req)
	if !bytes.Equal(req.Plaintext, make([]byte, 6)) || !bytes.Equal(req.Context, make([]byte, 3)) {
		t.Fatalf("not zeroed: %q %q", req.Plaintext, req.Context)
	}
}
