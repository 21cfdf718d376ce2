package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// logNode is a node of its own with its stderr in a buffer, its logger
// (which feeds the node's journal) and an audit file.
type logNode struct {
	*node
	stderr    *syncBuffer
	logger    *slog.Logger
	auditFile string
}

func mustStartLogNode(t *testing.T, level slog.Level, mods ...func(*server.Config)) *logNode {
	t.Helper()
	cfg, info, err := server.DevConfig("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(info.DataDir) })
	cfg.Log.Level, cfg.Log.Format = level, "json"
	cfg.Log.AuditFile = filepath.Join(t.TempDir(), "audit.log")
	for _, mod := range mods {
		mod(cfg)
	}
	stderr := &syncBuffer{}
	logger := server.NewLogger(stderr, cfg.Log)
	srv, err := server.New(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(srv, cfg, info)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.done = cancel, make(chan error, 1)
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(n.Stop)
	mustReady(t, srv)
	return &logNode{node: n, stderr: stderr, logger: logger, auditFile: cfg.Log.AuditFile}
}

// lines decodes the JSON lines of a non-following log route.
func mustLines[T any](t *testing.T, n *node, c *http.Client, path string) []T {
	t.Helper()
	r := n.MustDo(t, c, http.MethodGet, path, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, r.Status, r.Body)
	}
	var out []T
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	for {
		var v T
		if err := dec.Decode(&v); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, r.Body)
		}
		out = append(out, v)
	}
}

// mustUser creates an identity in the default enclave with a policy that
// allows allow, and returns its client.
func mustUser(t *testing.T, n *node, policy string, allow map[string][]string) (*http.Client, *api.APIKey) {
	t.Helper()
	c, key := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/policies/"+policy, api.Policy{Allow: allow}, nil)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+key.Identity(), api.CreateIdentityRequest{Policy: policy}, nil)
	return c, key
}

func findAudit(recs []api.AuditRecord, identity, action string, status int) *api.AuditRecord {
	for i, r := range recs {
		if r.Identity == identity && r.Action == action && r.Status == status {
			return &recs[i]
		}
	}
	return nil
}

// TestAuditTrail: an allowed and a denied call are audited with their
// identity and status, in the ring and in the audit file; a non-admin
// asking for logs gets 403, and that denial is audited and logged at
// INFO with the identity and the action; a policy with log:read lets a
// user read them.
func TestAuditTrail(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	adminKey, _ := api.ParseAPIKey(n.info.APIKey)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/audited", nil, nil)
	user, userKey := mustUser(t, n.node, "encrypt-only", map[string][]string{"key:encrypt": {"x"}})
	if r := n.MustDo(t, user, http.MethodGet, "/v1/logs", nil); r.Status != http.StatusForbidden {
		t.Fatalf("GET /v1/logs as a user = %d %s, want 403", r.Status, r.Body)
	}
	if r := n.MustDo(t, user, http.MethodPut, "/v1/key/create/denied", nil); r.Status != http.StatusForbidden {
		t.Fatalf("create as a user = %d, want 403", r.Status)
	}

	recs := mustLines[api.AuditRecord](t, n.node, n.admin, "/v1/logs/audit")
	ok := findAudit(recs, adminKey.Identity(), "key:create", 200)
	if ok == nil || ok.Object != "audited" || ok.Enclave != "default" || ok.Node != "dev" || ok.Seq == 0 || ok.RequestID == "" || ok.Remote == "" {
		t.Errorf("audit record of the allowed create = %+v", ok)
	}
	if r := findAudit(recs, userKey.Identity(), "log:read", 403); r == nil {
		t.Errorf("no audit record of the user's denied log read in %+v", recs)
	}
	if r := findAudit(recs, userKey.Identity(), "key:create", 403); r == nil || r.Object != "denied" {
		t.Errorf("audit record of the denied create = %+v", r)
	}
	if !strings.Contains(n.stderr.String(), `"level":"INFO","msg":"Request denied"`) ||
		!strings.Contains(n.stderr.String(), `"action":"log:read"`) ||
		!strings.Contains(n.stderr.String(), `"identity":"`+userKey.Identity()+`"`) {
		t.Errorf("no INFO line for the denial with identity and action:\n%s", n.stderr)
	}
	waitFor(t, "the audit file to hold the denial", 10*time.Second, func() bool {
		data, _ := os.ReadFile(n.auditFile)
		return strings.Contains(string(data), `"action":"log:read","method":"GET","path":"/v1/logs","status":403`)
	})

	reader, _ := mustUser(t, n.node, "log-reader", map[string][]string{"log:read": {"*"}})
	if r := n.MustDo(t, reader, http.MethodGet, "/v1/logs", nil); r.Status != http.StatusOK {
		t.Errorf("GET /v1/logs with log:read = %d %s", r.Status, r.Body)
	}
	if r := n.MustDo(t, reader, http.MethodGet, "/v1/logs/audit", nil); r.Status != http.StatusForbidden {
		t.Errorf("GET /v1/logs/audit with log:read only = %d, want 403", r.Status)
	}
	if r := n.MustDo(t, n.anon, http.MethodGet, "/v1/logs", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/logs without a certificate = %d, want 401", r.Status)
	}
}

// TestLogFilters runs the filters through the route.
func TestLogFilters(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelDebug)
	n.logger.Debug("filter-test debug")
	n.logger.Info("filter-test info")
	n.logger.Warn("filter-test Certificate x.crt expires in 3h")
	n.logger.Error("filter-test error")
	get := func(q string) []string {
		var out []string
		for _, r := range mustLines[api.LogRecord](t, n.node, n.admin, "/v1/logs?message=filter-test&"+q) {
			out = append(out, strings.TrimPrefix(r.Message, "filter-test "))
		}
		return strings.Fields(strings.Join(out, " "))
	}
	if got := get("level=warn"); len(got) != 6 || got[0] != "Certificate" || got[5] != "error" {
		t.Errorf("level=warn: %v", got)
	}
	if got := get("limit=1"); len(got) != 1 || got[0] != "error" {
		t.Errorf("limit=1: %v", got)
	}
	if got := get("since=1h"); len(got) != 8 {
		t.Errorf("since=1h: %v", got)
	}
	if got := get("until=" + time.Now().Add(-time.Hour).Format(time.RFC3339)); len(got) != 0 {
		t.Errorf("until an hour ago: %v", got)
	}
	if recs := mustLines[api.LogRecord](t, n.node, n.admin, "/v1/logs?message=X.CRT+EXPIRES"); len(recs) != 1 || recs[0].Level != "WARN" {
		t.Errorf("message=X.CRT EXPIRES: %+v", recs)
	}
	if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/logs?level=loud", nil); r.Status != http.StatusBadRequest {
		t.Errorf("level=loud = %d, want 400", r.Status)
	}
	if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/logs?since=yesterday-ish", nil); r.Status != http.StatusBadRequest {
		t.Errorf("since=yesterday-ish = %d, want 400", r.Status)
	}
}

// TestLogLevelAtRunTime: PUT /v1/logs/level changes what is kept at once.
func TestLogLevelAtRunTime(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	n.logger.Debug("level-test before")
	var resp api.LogLevelResponses
	n.MustOK(t, n.admin, http.MethodPut, "/v1/logs/level", api.LogLevelRequest{Level: "debug"}, &resp)
	if len(resp.Nodes) != 1 || resp.Nodes[0].Level != "DEBUG" {
		t.Errorf("answer = %+v", resp)
	}
	n.logger.Debug("level-test after")
	recs := mustLines[api.LogRecord](t, n.node, n.admin, "/v1/logs?message=level-test")
	if len(recs) != 1 || recs[0].Message != "level-test after" {
		t.Errorf("records = %+v", recs)
	}
	user, _ := mustUser(t, n.node, "readers", map[string][]string{"log:read": {"*"}})
	if r := n.MustDo(t, user, http.MethodPut, "/v1/logs/level", api.LogLevelRequest{Level: "error"}); r.Status != http.StatusForbidden {
		t.Errorf("a user setting the level = %d, want 403", r.Status)
	}
}

// TestFollowEndsWhenClientGoes: a follow receives a record logged after
// it started, and when the client goes away the server leaves no
// goroutine behind.
func TestFollowEndsWhenClientGoes(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: n.admin.Transport.(*http.Transport).TLSClientConfig, DisableKeepAlives: true}}
	// Warm up: the node's own background goroutines are running.
	n.MustOK(t, client, http.MethodGet, "/v1/logs?limit=1", nil, nil)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/v1/logs?follow=true&message=follow-test", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("follow = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	n.logger.Info("follow-test written later")
	got := make(chan api.LogRecord, 1)
	go func() {
		var r api.LogRecord
		if json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&r) == nil {
			got <- r
		}
		close(got)
	}()
	select {
	case r := <-got:
		if r.Message != "follow-test written later" || r.Node != "dev" {
			t.Errorf("record = %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follow did not deliver a record logged after it started")
	}
	cancel()
	resp.Body.Close()
	client.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the follow:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kesErrorEvent and kesAuditEvent are the JSON shapes that KES clients
// (kms-go's ErrorLog and AuditLog readers) decode.
type kesErrorEvent struct {
	Message string `json:"message"`
}

type kesAuditEvent struct {
	Time    time.Time `json:"time"`
	Request struct {
		IP       string `json:"ip"`
		Path     string `json:"path"`
		Identity string `json:"identity"`
	} `json:"request"`
	Response struct {
		StatusCode int           `json:"code"`
		Time       time.Duration `json:"time"`
	} `json:"response"`
}

// TestKESLogRoutes: KES's /v1/log/error and /v1/log/audit stream what
// happens from now on, in KES's shapes.
func TestKESLogRoutes(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	adminKey, _ := api.ParseAPIKey(n.info.APIKey)
	open := func(path string) (*json.Decoder, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+path, nil)
		c := &http.Client{Transport: n.admin.Transport}
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %v %v", path, resp, err)
		}
		return json.NewDecoder(resp.Body), func() { cancel(); resp.Body.Close() }
	}
	errs, stopErrs := open("/v1/log/error")
	defer stopErrs()
	audit, stopAudit := open("/v1/log/audit")
	defer stopAudit()

	n.logger.Info("kes-test info is not an error")
	n.logger.Warn("kes-test warning", slog.String("cert", "a.crt"))
	var e kesErrorEvent
	if err := errs.Decode(&e); err != nil || !strings.Contains(e.Message, "kes-test warning") || !strings.Contains(e.Message, "cert=a.crt") {
		t.Errorf("error log line = %+v, %v", e, err)
	}
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/kes-audit", nil, nil)
	for {
		var a kesAuditEvent
		if err := audit.Decode(&a); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if a.Request.Path != "/v1/key/create/kes-audit" {
			continue
		}
		if a.Request.Identity != adminKey.Identity() || a.Request.IP != "127.0.0.1" || a.Response.StatusCode != 200 || a.Response.Time <= 0 || a.Time.IsZero() {
			t.Errorf("audit event = %+v", a)
		}
		break
	}
}

// TestSecretsNeverLogged runs a key workflow with an API key, imported
// key bytes and known plaintexts at debug level, and searches stderr, the
// log stream, the audit stream and the audit file for them, raw, in
// base64 and in hex.
func TestSecretsNeverLogged(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelDebug)
	keyBytes := []byte("0123456789abcdef0123456789ABCDEF") // 32 bytes
	plaintext := []byte("the-known-plaintext-never-logged")
	context_ := []byte("the-known-context-never-logged")
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/import/secret-k", api.ImportKeyRequest{Key: keyBytes, Cipher: "AES256"}, nil)
	var enc api.EncryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/secret-k", api.EncryptKeyRequest{Plaintext: plaintext, Context: context_}, &enc)
	var dec api.DecryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/decrypt/secret-k", api.DecryptKeyRequest{Ciphertext: enc.Ciphertext, Context: context_}, &dec)
	var dk api.GenerateKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/generate/secret-k", api.GenerateKeyRequest{Context: context_}, &dk)
	// A failing decrypt and a bad body are logged too.
	n.MustDo(t, n.admin, http.MethodPut, "/v1/key/decrypt/secret-k", api.DecryptKeyRequest{Ciphertext: append(enc.Ciphertext[:len(enc.Ciphertext)-1:len(enc.Ciphertext)-1], 0), Context: context_})
	n.MustDo(t, n.admin, http.MethodPut, "/v1/key/encrypt/secret-k", []byte(`{"plaintext":"`+base64.StdEncoding.EncodeToString(plaintext)+`",`))

	apiKey, _ := api.ParseAPIKey(n.info.APIKey)
	secrets := map[string][]byte{
		"API key":     []byte(apiKey.String()),
		"key bytes":   keyBytes,
		"plaintext":   plaintext,
		"context":     context_,
		"ciphertext":  enc.Ciphertext,
		"data key":    dk.Plaintext,
		"wrapped key": dk.Ciphertext,
	}
	var places = map[string]string{"stderr": n.stderr.String()}
	places["log stream"] = string(n.MustDo(t, n.admin, http.MethodGet, "/v1/logs", nil).Body)
	places["audit stream"] = string(n.MustDo(t, n.admin, http.MethodGet, "/v1/logs/audit", nil).Body)
	waitFor(t, "the audit file", 10*time.Second, func() bool {
		data, _ := os.ReadFile(n.auditFile)
		return strings.Contains(string(data), "/v1/key/generate/secret-k")
	})
	data, _ := os.ReadFile(n.auditFile)
	places["audit file"] = string(data)
	if !strings.Contains(places["log stream"], `"msg":"Request"`) {
		t.Fatalf("the debug access log is missing from the log stream:\n%s", places["log stream"])
	}
	for what, s := range secrets {
		forms := map[string]string{
			"raw":       string(s),
			"base64":    base64.StdEncoding.EncodeToString(s),
			"base64url": base64.RawURLEncoding.EncodeToString(s),
			"hex":       hex.EncodeToString(s),
		}
		if what == "API key" {
			// Its seed, the part after "k1:".
			forms["seed"] = strings.TrimPrefix(string(s), "k1:")
		}
		for form, needle := range forms {
			if len(needle) < 8 {
				continue
			}
			for place, text := range places {
				if strings.Contains(text, needle) {
					t.Errorf("the %s (%s) is in the %s", what, form, place)
				}
			}
		}
	}
}

// TestUnauthenticatedDenialsRateLimited: a flood of requests without a
// client certificate is audited in full but logged at most once a second,
// and the next line says how many were left out.
func TestUnauthenticatedDenialsRateLimited(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	const flood = 50
	for range flood {
		if r := n.MustDo(t, n.anon, http.MethodGet, "/v1/key/list", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("GET /v1/key/list without a certificate = %d, want 401", r.Status)
		}
	}
	const line = `"msg":"Request denied: unknown identity or no client certificate"`
	if got := strings.Count(n.stderr.String(), line); got < 1 || got > 3 {
		t.Errorf("%d denial lines for %d denied requests within about a second, want 1 to 3", got, flood)
	}
	sent := flood
	waitFor(t, "a denial line with the count left out, once the second has passed", 5*time.Second, func() bool {
		n.MustDo(t, n.anon, http.MethodGet, "/v1/key/list", nil)
		sent++
		return strings.Contains(n.stderr.String(), `"not_logged_since":`)
	})
	recs := mustLines[api.AuditRecord](t, n.node, n.admin, "/v1/logs/audit")
	denied := 0
	for _, r := range recs {
		if r.Status == http.StatusUnauthorized {
			denied++
		}
	}
	if denied < sent {
		t.Errorf("%d audit records of unauthenticated denials, want %d: every one is audited", denied, sent)
	}
}
