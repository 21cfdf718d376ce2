package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

// answer is what the fake server answers to one route.
type answer struct {
	status int
	body   string
}

// seen is a request the fake server received.
type seen struct {
	method, path, body string
}

// fakeServer answers fixed JSON to "METHOD /path?query" and records the
// requests, which must come with the client certificate of key.
type fakeServer struct {
	*httptest.Server
	key *api.APIKey

	mu       sync.Mutex
	answers  map[string]answer
	requests []seen
}

// MustFakeServer starts a fake server and points the CLI's environment at
// it: MINKMS_SERVER, MINKMS_API_KEY and MINKMS_CACERT.
func MustFakeServer(t *testing.T, answers map[string]answer) *fakeServer {
	t.Helper()
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{key: key, answers: answers}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	f.StartTLS()
	t.Cleanup(f.Close)

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	setEnv(t, map[string]string{envServer: f.URL, envAPIKey: key.String(), envCACert: caFile})
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	route := r.Method + " " + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		route += "?" + r.URL.RawQuery
	}
	f.mu.Lock()
	f.requests = append(f.requests, seen{r.Method, route[len(r.Method)+1:], string(body)})
	a, ok := f.answers[route]
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if len(r.TLS.PeerCertificates) == 0 || api.IdentityOf(r.TLS.PeerCertificates[0]) != f.key.Identity() {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"not authorized: insufficient permissions"}`)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"no such route in the fake: `+route+`"}`)
		return
	}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// Requests returns the requests the server received.
func (f *fakeServer) Requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

// setEnv sets the CLI's environment for one test; variables not given are
// set empty, which the CLI treats as unset.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, name := range []string{envServer, envAPIKey, envCACert, envEnclave, "NO_COLOR"} {
		t.Setenv(name, vars[name])
	}
}

// runCLI runs the command line and returns its output and exit code.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // prefix
	}{
		{"Success", []string{"key", "rm", "k"}, exitOK, ""},
		{"ServerRefused", []string{"key", "stat", "missing"}, exitRefused, "minkms: key does not exist\n"},
		{"UnknownFlag", []string{"key", "create", "k", "--bogus"}, exitLocal, "minkms: unknown flag: --bogus"},
		{"MissingArgument", []string{"key", "create"}, exitLocal, "minkms: usage: minkms key create NAME [flags] (see 'minkms key create --help')\n"},
		{"UnknownCommand", []string{"frobnicate"}, exitLocal, "minkms: unknown command"},
		{"BadBase64", []string{"key", "decrypt", "k", "not base64!"}, exitLocal, "minkms: the ciphertext is not standard base64"},
		{"UnreadableFile", []string{"policy", "create", "p", "/nonexistent/policy.json"}, exitLocal, "minkms: read policy: "},
		{"BadVersion", []string{"key", "rm", "k", "--version", "0"}, exitLocal, "minkms: --version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, map[string]answer{
				"DELETE /v1/enclaves/default/keys/k":    {},
				"GET /v1/enclaves/default/keys/missing": {404, `{"message":"key does not exist"}`},
			})
			_, stderr, code := runCLI(t, "", tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if !strings.HasPrefix(stderr, tt.wantStderr) || (tt.wantStderr == "") != (stderr == "") {
				t.Errorf("stderr = %q, want %q...", stderr, tt.wantStderr)
			}
			if tt.wantCode == exitLocal && tt.name != "UnknownCommand" && len(srv.Requests()) != 0 {
				t.Errorf("a local error still sent %d requests", len(srv.Requests()))
			}
		})
	}
	t.Run("ConnectionRefused", func(t *testing.T) {
		MustFakeServer(t, nil)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, stderr, code := runCLI(t, "", "key", "ls", "--server", addr)
		if code != exitLocal || !strings.HasPrefix(stderr, "minkms: ") || !strings.Contains(stderr, "refused") {
			t.Errorf("exit code %d, stderr %q; want 1 and connection refused", code, stderr)
		}
	})
	t.Run("NoAPIKey", func(t *testing.T) {
		MustFakeServer(t, nil)
		t.Setenv(envAPIKey, "")
		_, stderr, code := runCLI(t, "", "key", "ls")
		if code != exitLocal || !strings.Contains(stderr, envAPIKey) {
			t.Errorf("exit code %d, stderr %q; want 1 and a hint at %s", code, stderr, envAPIKey)
		}
	})
}

func TestKeyCommands(t *testing.T) {
	keyInfo := `{"name":"k","algorithm":"ChaCha20","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a","version":2,
		"versions":[{"version":1,"algorithm":"ChaCha20"},{"version":2,"algorithm":"ChaCha20"}]}`
	tests := []struct {
		name        string
		args        []string
		stdin       string
		answers     map[string]answer
		wantRequest seen // the last request
		wantStdout  string
		json        any // if set, stdout must decode into it
	}{
		{
			name:        "CreateJSON",
			args:        []string{"key", "create", "k", "--algorithm", "ChaCha20", "--json"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k": {200, keyInfo}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k", `{"algorithm":"ChaCha20"}`},
			json:        &api.KeyInfo{},
		},
		{
			name:        "CreateText",
			args:        []string{"key", "create", "k", "--enclave", "t1"},
			answers:     map[string]answer{"PUT /v1/enclaves/t1/keys/k": {200, `{"name":"k","algorithm":"AES256"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/t1/keys/k", `{"algorithm":"AES256"}`},
			wantStdout:  "Created key k (AES256)\n",
		},
		{
			name: "ListFollowsContinueAt",
			args: []string{"key", "ls", "a"},
			answers: map[string]answer{
				"GET /v1/enclaves/default/keys?prefix=a":             {200, `{"names":["a1","a2"],"continue_at":"a3"}`},
				"GET /v1/enclaves/default/keys?continue=a3&prefix=a": {200, `{"names":["a3"]}`},
			},
			wantRequest: seen{"GET", "/v1/enclaves/default/keys?continue=a3&prefix=a", ""},
			wantStdout:  "a1\na2\na3\n",
		},
		{
			name:        "ListJSONEmpty",
			args:        []string{"key", "ls", "--json"},
			answers:     map[string]answer{"GET /v1/enclaves/default/keys": {200, `{"names":[]}`}},
			wantRequest: seen{"GET", "/v1/enclaves/default/keys", ""},
			wantStdout:  "{\n  \"names\": []\n}\n",
		},
		{
			name:        "Stat",
			args:        []string{"key", "stat", "k"},
			answers:     map[string]answer{"GET /v1/enclaves/default/keys/k": {200, keyInfo}},
			wantRequest: seen{"GET", "/v1/enclaves/default/keys/k", ""},
		},
		{
			name:        "RemoveVersion",
			args:        []string{"key", "rm", "k", "--version", "1"},
			answers:     map[string]answer{"DELETE /v1/enclaves/default/keys/k/versions/1": {}},
			wantRequest: seen{"DELETE", "/v1/enclaves/default/keys/k/versions/1", ""},
			wantStdout:  "Deleted version 1 of key k\n",
		},
		{
			name:        "Encrypt",
			args:        []string{"key", "encrypt", "k", "hello", "--context", "c"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/encrypt": {200, `{"ciphertext":"AQID"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/encrypt", `{"plaintext":"aGVsbG8=","context":"Yw=="}`},
			wantStdout:  "AQID\n",
		},
		{
			name:        "EncryptStdin",
			args:        []string{"key", "encrypt", "k", "-"},
			stdin:       "hello",
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/encrypt": {200, `{"ciphertext":"AQID"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/encrypt", `{"plaintext":"aGVsbG8="}`},
			wantStdout:  "AQID\n",
		},
		{
			name:        "Decrypt",
			args:        []string{"key", "decrypt", "k", "AQID"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/decrypt": {200, `{"plaintext":"aGVsbG8="}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/decrypt", `{"ciphertext":"AQID"}`},
			wantStdout:  "hello\n",
		},
		{
			name:        "DEKJSON",
			args:        []string{"key", "dek", "k", "--length", "16", "--json"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/generate": {200, `{"plaintext":"AQ==","ciphertext":"Ag=="}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/generate", `{"length":16}`},
			json:        &api.GenerateKeyResponse{},
		},
		{
			name:        "HMAC",
			args:        []string{"key", "hmac", "k", "m"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/hmac": {200, `{"hmac":"BQY="}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/hmac", `{"message":"bQ=="}`},
			wantStdout:  "BQY=\n",
		},
		{
			name:        "Import",
			args:        []string{"key", "import", "k", "--key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "--cipher", "ChaCha20"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/keys/k/import": {200, `{"name":"k","algorithm":"ChaCha20"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/keys/k/import", `{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","cipher":"ChaCha20"}`},
			wantStdout:  "Imported key k (ChaCha20)\n",
		},
		{
			name:        "PolicyCreateStdin",
			args:        []string{"policy", "create", "p", "-", "--replace"},
			stdin:       `{"allow": {"key:encrypt": ["a*"]}}`,
			answers:     map[string]answer{"PUT /v1/enclaves/default/policies/p?replace=true": {200, `{"name":"p","enclave":"default"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/policies/p?replace=true", `{"allow":{"key:encrypt":["a*"]}}`},
			wantStdout:  "Stored policy p\n",
		},
		{
			name:        "IdentityAdd",
			args:        []string{"identity", "add", "h1:x", "--policy", "p", "--json"},
			answers:     map[string]answer{"PUT /v1/enclaves/default/identities/h1:x": {200, `{"identity":"h1:x","enclave":"default","admin":false,"policy":"p"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/default/identities/h1:x", `{"policy":"p"}`},
			json:        &api.IdentityInfo{},
		},
		{
			name:        "EnclaveCreate",
			args:        []string{"enclave", "create", "t1"},
			answers:     map[string]answer{"PUT /v1/enclaves/t1": {200, `{"name":"t1"}`}},
			wantRequest: seen{"PUT", "/v1/enclaves/t1", ""},
			wantStdout:  "Created enclave t1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, tt.answers)
			stdout, stderr, code := runCLI(t, tt.stdin, tt.args...)
			if code != exitOK {
				t.Fatalf("exit code = %d, stderr %q", code, stderr)
			}
			reqs := srv.Requests()
			if len(reqs) == 0 {
				t.Fatal("no request")
			}
			last := reqs[len(reqs)-1]
			if last.method != tt.wantRequest.method || last.path != tt.wantRequest.path {
				t.Errorf("request = %s %s, want %s %s", last.method, last.path, tt.wantRequest.method, tt.wantRequest.path)
			}
			if !jsonEqual(last.body, tt.wantRequest.body) {
				t.Errorf("request body = %s, want %s", last.body, tt.wantRequest.body)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			if tt.json != nil {
				dec := json.NewDecoder(strings.NewReader(stdout))
				dec.DisallowUnknownFields()
				if err := dec.Decode(tt.json); err != nil {
					t.Errorf("stdout is not one JSON document of %T: %v\n%s", tt.json, err, stdout)
				}
				if dec.More() {
					t.Errorf("stdout holds more than one JSON document:\n%s", stdout)
				}
			}
			if strings.Contains(stdout, "\x1b[") {
				t.Errorf("stdout is coloured though it is not a terminal: %q", stdout)
			}
		})
	}
}

// jsonEqual reports whether a and b are the same JSON document, or both
// empty.
func jsonEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var av, bv any
	if json.Unmarshal([]byte(a), &av) != nil || json.Unmarshal([]byte(b), &bv) != nil {
		return false
	}
	aj, _ := json.Marshal(av)
	bj, _ := json.Marshal(bv)
	return bytes.Equal(aj, bj)
}

func TestEnclaveFromEnvironment(t *testing.T) {
	srv := MustFakeServer(t, map[string]answer{
		"GET /v1/enclaves/env-enclave/keys":  {200, `{"names":["a"]}`},
		"GET /v1/enclaves/flag-enclave/keys": {200, `{"names":["b"]}`},
	})
	t.Setenv(envEnclave, "env-enclave")
	if stdout, stderr, code := runCLI(t, "", "key", "ls"); code != exitOK || stdout != "a\n" {
		t.Errorf("with %s: exit %d, stdout %q, stderr %q", envEnclave, code, stdout, stderr)
	}
	if stdout, stderr, code := runCLI(t, "", "key", "ls", "-e", "flag-enclave"); code != exitOK || stdout != "b\n" {
		t.Errorf("with --enclave: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("server got %d requests, want 2", n)
	}
}

func TestPolicyFileIsStrict(t *testing.T) {
	tests := []struct {
		name   string
		policy string
	}{
		{"UnknownField", `{"allow": {"key:encrypt": ["*"]}, "denny": {}}`},
		{"TrailingData", `{"allow": {}} {"deny": {}}`},
		{"NotJSON", `allow: everything`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, nil)
			_, stderr, code := runCLI(t, tt.policy, "policy", "create", "p", "-")
			if code != exitLocal || !strings.HasPrefix(stderr, "minkms: read policy") {
				t.Errorf("exit %d, stderr %q; want 1 and a policy error", code, stderr)
			}
			if len(srv.Requests()) != 0 {
				t.Error("a bad policy was sent to the server")
			}
		})
	}
}

func TestIdentityLocal(t *testing.T) {
	setEnv(t, nil)
	t.Run("New", func(t *testing.T) {
		stdout, stderr, code := runCLI(t, "", "identity", "new", "--json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct {
			APIKey   string `json:"api_key"`
			Identity string `json:"identity"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		key, err := api.ParseAPIKey(got.APIKey)
		if err != nil {
			t.Fatalf("the printed API key does not parse: %v", err)
		}
		if key.Identity() != got.Identity {
			t.Errorf("identity = %s, want that of the API key, %s", got.Identity, key.Identity())
		}
	})
	t.Run("Of", func(t *testing.T) {
		key, err := api.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := key.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "client.crt")
		// A key block before the certificate is skipped.
		data := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0}}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})...)
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runCLI(t, "", "identity", "of", file)
		// Both forms: minkms's, then KES's 64 hex digits.
		if want := key.Identity() + "\n" + api.HexIdentity(key.Identity()) + "\n"; code != exitOK || stdout != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
	})
	t.Run("OfNoCertificate", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "empty.crt")
		if err := os.WriteFile(file, []byte("nothing"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := runCLI(t, "", "identity", "of", file); code != exitLocal || !strings.Contains(stderr, "no PEM certificate") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestColor(t *testing.T) {
	tty := openTerminal(t)
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	tests := []struct {
		name    string
		w       io.Writer
		noColor string
		want    bool
	}{
		{"Terminal", tty, "", true},
		{"TerminalNoColor", tty, "1", false},
		{"File", file, "", false},
		{"DevNull", devNull, "", false}, // a character device, but no terminal
		{"Buffer", &bytes.Buffer{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			if got := colorEnabled(tt.w); got != tt.want {
				t.Errorf("colorEnabled = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("TableAlignsColouredHeader", func(t *testing.T) {
		var b bytes.Buffer
		tab := newTable(&b, "A", "B")
		tab.row("long-value", "x")
		if err := tab.flush(); err != nil {
			t.Fatal(err)
		}
		if want := "A           B\nlong-value  x\n"; b.String() != want {
			t.Errorf("table = %q, want %q", b.String(), want)
		}
	})
}

// TestHelp checks that every command explains itself with an example.
func TestHelp(t *testing.T) {
	setEnv(t, nil)
	root := (&cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}).rootCommand()
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden || cmd.Name() == "help" {
			return
		}
		t.Run(strings.ReplaceAll(cmd.CommandPath(), " ", "_"), func(t *testing.T) {
			if cmd.Short == "" || cmd.Long == "" || cmd.Example == "" {
				t.Errorf("%s lacks Short, Long or Example", cmd.CommandPath())
			}
			args := append(strings.Fields(cmd.CommandPath())[1:], "--help")
			stdout, stderr, code := runCLI(t, "", args...)
			if code != exitOK || !strings.Contains(stdout, "Examples:") || stderr != "" {
				t.Errorf("%s --help: exit %d, stderr %q", cmd.CommandPath(), code, stderr)
			}
		})
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
