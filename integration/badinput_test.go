package integration_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestBadInput sends what a confused or hostile client might: each gets a
// clear 4xx with a JSON message, and the key store is unchanged afterwards.
func TestBadInput(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := ctxT(t)
	admin := n.Client(n.AdminKey)
	if err := admin.CreateKey(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	ct, err := admin.Encrypt(ctx, "victim", []byte("payload"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)/2] ^= 0x01
	truncated := ct[:len(ct)-1]

	keysBefore := listAll(t, admin)
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig(n.AdminKey)}}
	defer httpc.CloseIdleConnections()

	decryptBody := func(c []byte, context string) string {
		b, _ := json.Marshal(api.DecryptKeyRequest{Ciphertext: c, Context: []byte(context)})
		return string(b)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		message                  string // exact, when not empty
	}{
		{"MalformedJSON", "PUT", "/v1/key/encrypt/victim", `{"plaintext": "aGk=",`, 400, ""},
		{"WrongJSONType", "PUT", "/v1/key/encrypt/victim", `{"plaintext": 42}`, 400, ""},
		{"HugeBody", "PUT", "/v1/key/encrypt/victim", `{"plaintext":"` + strings.Repeat("A", 2<<20) + `"}`, 413, ""},
		{"DotDotName", "PUT", "/v1/key/create/..", "", 400, ""},
		{"EncodedSlashName", "PUT", "/v1/key/create/a%2Fb", "", 400, ""},
		{"LongName", "PUT", "/v1/key/create/" + strings.Repeat("k", 81), "", 400, ""},
		{"BadCharName", "PUT", "/v1/key/create/a%20b", "", 400, ""},
		{"GarbageCiphertext", "PUT", "/v1/key/decrypt/victim", decryptBody([]byte("garbage garbage garbage garbage garbage"), "ctx"), 400, api.ErrDecrypt.Message},
		{"EmptyCiphertext", "PUT", "/v1/key/decrypt/victim", decryptBody(nil, "ctx"), 400, api.ErrDecrypt.Message},
		{"BitFlippedCiphertext", "PUT", "/v1/key/decrypt/victim", decryptBody(flipped, "ctx"), 400, api.ErrDecrypt.Message},
		{"TruncatedCiphertext", "PUT", "/v1/key/decrypt/victim", decryptBody(truncated, "ctx"), 400, api.ErrDecrypt.Message},
		{"WrongContext", "PUT", "/v1/key/decrypt/victim", decryptBody(ct, "other"), 400, api.ErrDecrypt.Message},
		{"NotBase64", "PUT", "/v1/key/decrypt/victim", `{"ciphertext":"!!!not base64!!!"}`, 400, ""},
		{"ImportShortKey", "PUT", "/v1/key/import/short", `{"key":"` + base64.StdEncoding.EncodeToString([]byte("short")) + `","cipher":"AES256"}`, 400, ""},
		{"ImportBadCipher", "PUT", "/v1/key/import/badcipher", `{"key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","cipher":"DES"}`, 400, ""},
		{"DataKeyTooLong", "PUT", "/v1/enclaves/default/keys/victim/generate", `{"length": 4096}`, 400, ""},
		{"MissingKey", "PUT", "/v1/key/encrypt/nope", `{"plaintext":"aGk="}`, 404, api.ErrKeyNotFound.Message},
		{"CreateExisting", "PUT", "/v1/key/create/victim", "", 400, api.ErrKeyExists.Message},
		{"CreateExistingNative", "PUT", "/v1/enclaves/default/keys/victim", "", 409, api.ErrKeyExists.Message},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, n.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := httpc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			var e api.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
				t.Fatalf("body is not a JSON error message: %q", body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tc.message != "" && e.Message != tc.message {
				t.Fatalf("message %q, want %q", e.Message, tc.message)
			}
		})
	}

	if after := listAll(t, admin); !slices.Equal(keysBefore, after) {
		t.Fatalf("keys changed by bad input: before %v, after %v", keysBefore, after)
	}
	got, err := admin.Decrypt(ctx, "victim", ct, []byte("ctx"))
	if err != nil || string(got) != "payload" {
		t.Fatalf("victim no longer decrypts: %q, %v", got, err)
	}

	t.Run("NoClientCertificate", func(t *testing.T) {
		anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig(nil)}}
		defer anon.CloseIdleConnections()
		resp, err := anon.Get(n.URL + "/v1/key/describe/victim")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		resp, err = anon.Get(n.URL + "/version")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/version without certificate: status %d, want 200", resp.StatusCode)
		}
	})
}

func listAll(tb testing.TB, c *api.Client) []string {
	tb.Helper()
	var names []string
	cont := ""
	for {
		page, err := c.ListKeys(ctxT(tb), "", cont, 0)
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, page.Names...)
		if page.ContinueAt == "" {
			return names
		}
		cont = page.ContinueAt
	}
}
