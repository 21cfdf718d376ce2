package integration_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestKeyLifecycleCLI walks an operator's use of a key through the CLI:
// create, data key, decrypt it, encrypt and decrypt with a context, rotate
// and still decrypt old ciphertext, delete.
func TestKeyLifecycleCLI(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	admin := n.AdminKey

	n.MustCLI(admin, "key", "create", "cli-key")
	if res := n.CLI(admin, "key", "create", "cli-key"); res.Code != 2 || !strings.Contains(res.Stderr, "key already exists") {
		t.Fatalf("second create: exit %d, stderr %q; want exit 2 and 'key already exists'", res.Code, res.Stderr)
	}

	var dek api.GenerateKeyResponse
	mustJSON(t, n.MustCLI(admin, "key", "dek", "cli-key", "--context", "object-1", "--json"), &dek)
	if len(dek.Plaintext) != 32 {
		t.Fatalf("data key is %d bytes, want 32", len(dek.Plaintext))
	}
	ctB64 := base64Std(dek.Ciphertext)
	var dec api.DecryptKeyResponse
	mustJSON(t, n.MustCLI(admin, "key", "decrypt", "cli-key", ctB64, "--context", "object-1", "--json"), &dec)
	if string(dec.Plaintext) != string(dek.Plaintext) {
		t.Fatal("decrypted data key differs from the generated one")
	}

	ct := strings.TrimSpace(n.MustCLI(admin, "key", "encrypt", "cli-key", "hello world", "--context", "bucket=photos"))
	if got := strings.TrimSpace(n.MustCLI(admin, "key", "decrypt", "cli-key", ct, "--context", "bucket=photos")); got != "hello world" {
		t.Fatalf("decrypt = %q, want %q", got, "hello world")
	}
	if res := n.CLI(admin, "key", "decrypt", "cli-key", ct, "--context", "bucket=other"); res.Code != 2 || !strings.Contains(res.Stderr, api.ErrDecrypt.Message) {
		t.Fatalf("decrypt with wrong context: exit %d, stderr %q", res.Code, res.Stderr)
	}

	n.MustCLI(admin, "key", "rotate", "cli-key")
	var info api.KeyInfo
	mustJSON(t, n.MustCLI(admin, "key", "stat", "cli-key", "--json"), &info)
	if info.Version != 2 || len(info.Versions) != 2 {
		t.Fatalf("after rotate: %+v", info)
	}
	if got := strings.TrimSpace(n.MustCLI(admin, "key", "decrypt", "cli-key", ct, "--context", "bucket=photos")); got != "hello world" {
		t.Fatalf("old ciphertext after rotate = %q", got)
	}
	if mac := strings.TrimSpace(n.MustCLI(admin, "key", "hmac", "cli-key", "message")); mac == "" {
		t.Fatal("empty HMAC")
	}

	// Deleting version 1 makes its ciphertexts undecryptable; version 2 goes on.
	ct2 := strings.TrimSpace(n.MustCLI(admin, "key", "encrypt", "cli-key", "new"))
	n.MustCLI(admin, "key", "rm", "cli-key", "--version", "1")
	if res := n.CLI(admin, "key", "decrypt", "cli-key", ct, "--context", "bucket=photos"); res.Code != 2 {
		t.Fatalf("decrypt after deleting its version: exit %d", res.Code)
	}
	if got := strings.TrimSpace(n.MustCLI(admin, "key", "decrypt", "cli-key", ct2)); got != "new" {
		t.Fatalf("decrypt of version 2 = %q", got)
	}

	var list struct {
		Names []string `json:"names"`
	}
	mustJSON(t, n.MustCLI(admin, "key", "ls", "--json"), &list)
	if len(list.Names) != 1 || list.Names[0] != "cli-key" {
		t.Fatalf("key ls = %v", list.Names)
	}
	n.MustCLI(admin, "key", "rm", "cli-key")
	if res := n.CLI(admin, "key", "stat", "cli-key"); res.Code != 2 || !strings.Contains(res.Stderr, "key does not exist") {
		t.Fatalf("stat after rm: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// TestAccessControlCLI sets up a user with a policy through the CLI and
// shows the user and an unknown identity getting exactly what they may.
func TestAccessControlCLI(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	admin := n.AdminKey
	n.MustCLI(admin, "key", "create", "app-key")
	n.MustCLI(admin, "key", "create", "secret-key")

	policy := filepath.Join(t.TempDir(), "app.json")
	if err := os.WriteFile(policy, []byte(`{"allow": {"key:encrypt": ["app-*"], "key:decrypt": ["app-*"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n.MustCLI(admin, "policy", "create", "app", policy)

	var ident struct {
		APIKey   string `json:"api_key"`
		Identity string `json:"identity"`
	}
	mustJSON(t, n.MustCLI(nil, "identity", "new", "--json"), &ident)
	user, err := api.ParseAPIKey(ident.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	if user.Identity() != ident.Identity {
		t.Fatalf("identity new printed %s, but the key's identity is %s", ident.Identity, user.Identity())
	}
	n.MustCLI(admin, "identity", "add", ident.Identity, "--policy", "app")

	ct := strings.TrimSpace(n.MustCLI(user, "key", "encrypt", "app-key", "for the app"))
	if got := strings.TrimSpace(n.MustCLI(user, "key", "decrypt", "app-key", ct)); got != "for the app" {
		t.Fatalf("user decrypt = %q", got)
	}
	for _, args := range [][]string{
		{"key", "encrypt", "secret-key", "x"},
		{"key", "create", "app-new"},
		{"key", "rm", "app-key"},
		{"identity", "add", MustAPIKey(t).Identity(), "--admin"},
		{"policy", "rm", "app"},
	} {
		if res := n.CLI(user, args...); res.Code != 2 || !strings.Contains(res.Stderr, api.ErrNotAllowed.Message) {
			t.Errorf("user %v: exit %d, stderr %q; want exit 2, %q", args, res.Code, res.Stderr, api.ErrNotAllowed.Message)
		}
	}
	stranger := MustAPIKey(t)
	if res := n.CLI(stranger, "key", "encrypt", "app-key", "x"); res.Code != 2 || !strings.Contains(res.Stderr, api.ErrNotAllowed.Message) {
		t.Errorf("unknown identity: exit %d, stderr %q", res.Code, res.Stderr)
	}
	// The refused calls changed nothing.
	var list struct {
		Names []string `json:"names"`
	}
	mustJSON(t, n.MustCLI(admin, "key", "ls", "--json"), &list)
	if strings.Join(list.Names, ",") != "app-key,secret-key" {
		t.Fatalf("keys after refused calls: %v", list.Names)
	}
	n.MustCLI(admin, "policy", "show", "app")

	// Every listing goes through the same ls command; each lists its own kind.
	n.MustCLI(admin, "enclave", "create", "tenant-1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enclave", "ls"}, "default\ntenant-1\n"},
		{[]string{"enclave", "ls", "ten"}, "tenant-1\n"},
		{[]string{"policy", "ls"}, "app\n"},
		{[]string{"identity", "ls"}, ident.Identity + "\n"},
		{[]string{"key", "ls", "--enclave", "tenant-1"}, ""},
	} {
		if got := n.MustCLI(admin, tc.args...); got != tc.want {
			t.Errorf("minkms %v = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func mustJSON(tb testing.TB, s string, v any) {
	tb.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		tb.Fatalf("not the expected JSON: %v\n%s", err, s)
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
