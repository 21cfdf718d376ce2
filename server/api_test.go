package server_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

func TestKESErrors(t *testing.T) {
	n := MustSharedNode(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/kes-errors", nil, nil)
	t.Cleanup(func() { n.MustDo(t, n.admin, http.MethodDelete, "/v1/key/delete/kes-errors", nil) }) // the node is shared, also across -count runs
	stranger, _ := n.MustClient(t)

	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		body   any
		want   *api.Error
	}{
		{"KeyExists", n.admin, http.MethodPut, "/v1/key/create/kes-errors", nil, api.ErrKeyExists},
		{"KeyExistsPOST", n.admin, http.MethodPost, "/v1/key/create/kes-errors", nil, api.ErrKeyExists},
		{"ImportExists", n.admin, http.MethodPut, "/v1/key/import/kes-errors",
			api.ImportKeyRequest{Key: make([]byte, 32), Cipher: "AES256"}, api.ErrKeyExists},
		{"DescribeMissing", n.admin, http.MethodGet, "/v1/key/describe/kes-missing", nil, api.ErrKeyNotFound},
		{"DeleteMissing", n.admin, http.MethodDelete, "/v1/key/delete/kes-missing", nil, api.ErrKeyNotFound},
		{"EncryptMissing", n.admin, http.MethodPut, "/v1/key/encrypt/kes-missing",
			api.EncryptKeyRequest{Plaintext: []byte("x")}, api.ErrKeyNotFound},
		{"GarbageCiphertext", n.admin, http.MethodPut, "/v1/key/decrypt/kes-errors",
			api.DecryptKeyRequest{Ciphertext: []byte("this is not a ciphertext at all")}, api.ErrDecrypt},
		{"EmptyCiphertext", n.admin, http.MethodPut, "/v1/key/decrypt/kes-errors",
			api.DecryptKeyRequest{Ciphertext: []byte{}}, api.ErrDecrypt},
		{"UnknownIdentity", stranger, http.MethodGet, "/v1/key/describe/kes-errors", nil, api.ErrNotAllowed},
		{"UnknownIdentityCreate", stranger, http.MethodPut, "/v1/key/create/kes-stranger", nil, api.ErrNotAllowed},
		{"NoCertificate", n.anon, http.MethodGet, "/v1/key/describe/kes-errors", nil, api.ErrNoCertificate},
		{"NoCertificateStatus", n.anon, http.MethodGet, "/v1/status", nil, api.ErrNoCertificate},
		{"NoCertificateMetrics", n.anon, http.MethodGet, "/v1/metrics", nil, api.ErrNoCertificate},
		{"NativeKeyExists", n.admin, http.MethodPut, "/v1/enclaves/default/keys/kes-errors", nil,
			&api.Error{Status: http.StatusConflict, Message: api.ErrKeyExists.Message}},
		{"NativeEnclaveMissing", n.admin, http.MethodGet, "/v1/enclaves/no-such-enclave", nil, api.ErrEnclaveNotFound},
		{"NativeEnclaveExists", n.admin, http.MethodPut, "/v1/enclaves/default", nil,
			&api.Error{Status: http.StatusConflict, Message: api.ErrEnclaveExists.Message}},
		{"NativeVersionMissing", n.admin, http.MethodDelete, "/v1/enclaves/default/keys/kes-errors/versions/7", nil, api.ErrKeyVersionNotFound},
		{"PolicyMissing", n.admin, http.MethodGet, "/v1/enclaves/default/policies/no-policy", nil, api.ErrPolicyNotFound},
		{"UnknownRoute", n.admin, http.MethodGet, "/v1/nothing/here", nil, &api.Error{Status: http.StatusNotFound, Message: "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.MustDo(t, tt.client, tt.method, tt.path, tt.body)
			if r.Status != tt.want.Status || r.Message() != tt.want.Message {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, r.Status, r.Message(), tt.want.Status, tt.want.Message)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	n := MustSharedNode(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/round-trip", nil, nil)

	var info api.KeyInfo
	n.MustOK(t, n.admin, http.MethodGet, "/v1/key/describe/round-trip", nil, &info)
	if info.Name != "round-trip" || info.Algorithm == "" || info.Versions != nil {
		t.Errorf("KES describe = %+v, want the name, an algorithm and no versions", info)
	}

	ctx := []byte("bucket=photos")
	var enc api.EncryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/round-trip",
		api.EncryptKeyRequest{Plaintext: []byte("secret"), Context: ctx}, &enc)
	var dec api.DecryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPost, "/v1/key/decrypt/round-trip",
		api.DecryptKeyRequest{Ciphertext: enc.Ciphertext, Context: ctx}, &dec)
	if string(dec.Plaintext) != "secret" {
		t.Errorf("decrypt = %q, want secret", dec.Plaintext)
	}
	r := n.MustDo(t, n.admin, http.MethodPut, "/v1/key/decrypt/round-trip",
		api.DecryptKeyRequest{Ciphertext: enc.Ciphertext, Context: []byte("other")})
	if r.Status != http.StatusBadRequest || r.Message() != api.ErrDecrypt.Message {
		t.Errorf("decrypt with another context = %d %q, want 400 %q", r.Status, r.Message(), api.ErrDecrypt.Message)
	}

	var dek api.GenerateKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/generate/round-trip", api.GenerateKeyRequest{Context: ctx}, &dek)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/decrypt/round-trip",
		api.DecryptKeyRequest{Ciphertext: dek.Ciphertext, Context: ctx}, &dec)
	if len(dek.Plaintext) != 32 || !bytes.Equal(dec.Plaintext, dek.Plaintext) {
		t.Errorf("generated data key of %d bytes does not decrypt to itself", len(dek.Plaintext))
	}

	var mac1, mac2 api.HMACResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/hmac/round-trip", api.HMACRequest{Message: []byte("m")}, &mac1)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/hmac/round-trip", api.HMACRequest{Message: []byte("m")}, &mac2)
	if len(mac1.HMAC) != 32 || !bytes.Equal(mac1.HMAC, mac2.HMAC) {
		t.Errorf("HMAC is not a stable 32-byte value: %x, %x", mac1.HMAC, mac2.HMAC)
	}

	// Native: rotate, describe with versions, old ciphertexts still decrypt.
	var rot api.RotateKeyResponse
	n.MustOK(t, n.admin, http.MethodPost, "/v1/enclaves/default/keys/round-trip/rotate", nil, &rot)
	if rot.Version != 2 {
		t.Errorf("rotate = version %d, want 2", rot.Version)
	}
	n.MustOK(t, n.admin, http.MethodGet, "/v1/enclaves/default/keys/round-trip", nil, &info)
	if info.Version != 2 || len(info.Versions) != 2 {
		t.Errorf("native describe = %+v, want version 2 of 2", info)
	}
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/keys/round-trip/decrypt",
		api.DecryptKeyRequest{Ciphertext: enc.Ciphertext, Context: ctx}, &dec)
	if string(dec.Plaintext) != "secret" {
		t.Errorf("decrypt after rotation = %q, want secret", dec.Plaintext)
	}

	if !slices.Contains(n.MustListKeys(t), "round-trip") {
		t.Error("list does not hold round-trip")
	}
	for _, path := range []string{"/v1/key/list/round-tr*", "/v1/key/list/round-tr", "/v1/enclaves/default/keys?prefix=round-tr"} {
		var page api.ListResponse
		n.MustOK(t, n.admin, http.MethodGet, path, nil, &page)
		if !slices.Equal(page.Names, []string{"round-trip"}) {
			t.Errorf("GET %s = %v, want [round-trip]", path, page.Names)
		}
	}
	var all api.ListResponse
	n.MustOK(t, n.admin, http.MethodGet, "/v1/key/list/", nil, &all)
	if !slices.Contains(all.Names, "round-trip") {
		t.Errorf("GET /v1/key/list/ = %v, want round-trip among them", all.Names)
	}
	n.MustOK(t, n.admin, http.MethodDelete, "/v1/key/delete/round-trip", nil, nil)
	if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/round-trip", nil); r.Status != http.StatusNotFound {
		t.Errorf("describe after delete = %d, want 404", r.Status)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	n := MustSharedNode(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/bad-input", nil, nil)
	t.Cleanup(func() { n.MustDo(t, n.admin, http.MethodDelete, "/v1/key/delete/bad-input", nil) }) // the node is shared, also across -count runs
	before := n.MustListKeys(t)
	long := strings.Repeat("a", 81)

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		msg    string // a substring of the message
	}{
		{"DotDot", http.MethodPut, "/v1/key/create/..", nil, http.StatusBadRequest, ""},
		{"Dot", http.MethodPut, "/v1/key/create/.", nil, http.StatusBadRequest, ""},
		{"EncodedSlash", http.MethodPut, "/v1/key/create/a%2Fb", nil, http.StatusBadRequest, "slash"},
		{"EncodedSlashLower", http.MethodPut, "/v1/key/create/a%2fb", nil, http.StatusBadRequest, "slash"},
		{"EncodedSlashDotDot", http.MethodGet, "/v1/key/describe/..%2Fbad-input", nil, http.StatusBadRequest, "slash"},
		{"EncodedSlashNative", http.MethodPut, "/v1/enclaves/default%2Fkeys/keys/x", nil, http.StatusBadRequest, "slash"},
		{"EncodedSpace", http.MethodPut, "/v1/key/create/a%20b", nil, http.StatusBadRequest, ""},
		// The name is "a%41", not "aA": a path is decoded once.
		{"EncodedPercent", http.MethodPut, "/v1/key/create/a%2541", nil, http.StatusBadRequest, "invalid name"},
		{"EncodedPercentNative", http.MethodPut, "/v1/enclaves/default/keys/a%2541", nil, http.StatusBadRequest, "invalid name"},
		{"EncodedPercentDotDot", http.MethodGet, "/v1/key/describe/%252E%252E", nil, http.StatusBadRequest, "invalid name"},
		{"TooLong", http.MethodPut, "/v1/key/create/" + long, nil, http.StatusBadRequest, ""},
		{"TooLongNative", http.MethodPut, "/v1/enclaves/default/keys/" + long, nil, http.StatusBadRequest, ""},
		{"BadEnclave", http.MethodPut, "/v1/enclaves/" + long, nil, http.StatusBadRequest, ""},
		{"BadIdentity", http.MethodPut, "/v1/enclaves/default/identities/alice", nil, http.StatusBadRequest, ""},
		{"BadVersion", http.MethodDelete, "/v1/enclaves/default/keys/bad-input/versions/0", nil, http.StatusBadRequest, "version"},
		{"BadVersionText", http.MethodDelete, "/v1/enclaves/default/keys/bad-input/versions/one", nil, http.StatusBadRequest, "version"},
		{"BadPrefix", http.MethodGet, "/v1/key/list/a:b", nil, http.StatusBadRequest, "prefix"},
		{"BadLimit", http.MethodGet, "/v1/key/list/*?limit=many", nil, http.StatusBadRequest, "limit"},
		{"MalformedJSON", http.MethodPut, "/v1/key/encrypt/bad-input", []byte(`{"plaintext":`), http.StatusBadRequest, "malformed request body"},
		{"NotJSON", http.MethodPut, "/v1/key/import/bad-input-2", []byte(`key=abc`), http.StatusBadRequest, "malformed request body"},
		{"BadBase64", http.MethodPut, "/v1/key/import/bad-input-2", []byte(`{"key":"!!!","cipher":"AES256"}`), http.StatusBadRequest, "malformed request body"},
		{"TrailingData", http.MethodPut, "/v1/key/import/bad-input-2", []byte(`{"cipher":"AES256"} {}`), http.StatusBadRequest, "malformed request body"},
		{"MissingBody", http.MethodPut, "/v1/key/import/bad-input-2", nil, http.StatusBadRequest, "missing request body"},
		{"ShortImportKey", http.MethodPut, "/v1/key/import/bad-input-2", api.ImportKeyRequest{Key: []byte("short"), Cipher: "AES256"}, http.StatusBadRequest, ""},
		{"BadCipher", http.MethodPut, "/v1/key/import/bad-input-2", api.ImportKeyRequest{Key: make([]byte, 32), Cipher: "DES"}, http.StatusBadRequest, "algorithm"},
		{"NativeUnknownField", http.MethodPut, "/v1/enclaves/default/keys/bad-input-2", []byte(`{"algorithm":"AES256","colour":"red"}`), http.StatusBadRequest, "unknown field"},
		{"NativeBadAlgorithm", http.MethodPut, "/v1/enclaves/default/keys/bad-input-2", api.CreateKeyRequest{Algorithm: "ROT13"}, http.StatusBadRequest, "algorithm"},
		{"BodyTooLarge", http.MethodPut, "/v1/key/import/bad-input-2", bytes.Repeat([]byte("a"), 2<<20), http.StatusRequestEntityTooLarge, "request body too large"},
		{"BodyTooLargeChunked", http.MethodPut, "/v1/key/encrypt/bad-input", io.MultiReader(strings.NewReader(`{"plaintext":"`), bytes.NewReader(bytes.Repeat([]byte("A"), 2<<20)), strings.NewReader(`"}`)), http.StatusRequestEntityTooLarge, "request body too large"},
		{"GenerateBadLength", http.MethodPut, "/v1/key/generate/bad-input", api.GenerateKeyRequest{Length: 1 << 20}, http.StatusBadRequest, ""},
		{"MethodNotAllowed", http.MethodPatch, "/v1/key/create/bad-input-2", nil, http.StatusMethodNotAllowed, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := n.MustDo(t, n.admin, tt.method, tt.path, tt.body)
			if r.Status != tt.status || !strings.Contains(r.Message(), tt.msg) || r.Message() == "" {
				t.Errorf("%s %s = %d %q, want %d and a message containing %q", tt.method, tt.path, r.Status, r.Message(), tt.status, tt.msg)
			}
		})
	}
	t.Run("EscapedLettersAreTheName", func(t *testing.T) {
		// %62 is "b": a client may escape what it likes, once.
		n.MustOK(t, n.admin, http.MethodGet, "/v1/key/describe/%62ad-input", nil, nil)
		n.MustOK(t, n.admin, http.MethodGet, "/v1/enclaves/default/keys/%62ad-input", nil, nil)
	})
	t.Run("KESIgnoresUnknownFields", func(t *testing.T) {
		var enc api.EncryptKeyResponse
		n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/bad-input", []byte(`{"plaintext":"eA==","colour":"red"}`), &enc)
	})
	if after := n.MustListKeys(t); !slices.Equal(before, after) {
		t.Errorf("failed requests changed the keys:\nbefore %v\nafter  %v", before, after)
	}
}
