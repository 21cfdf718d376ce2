package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/storage"
)

// node is a running server of the tests and what is needed to call it.
type node struct {
	srv  *server.Server
	cfg  *server.Config
	info server.DevInfo
	url  string
	pool *x509.CertPool

	admin  *http.Client // a cluster admin
	anon   *http.Client // no client certificate
	stop   context.CancelFunc
	done   chan error
	stopMu sync.Once
}

var (
	sharedOnce sync.Once
	shared     *node
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		os.RemoveAll(shared.info.DataDir)
	}
	os.Exit(code)
}

// MustSharedNode returns the node most tests share; tests use names of
// their own so that they do not see each other's keys.
func MustSharedNode(tb testing.TB) *node {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = startNode() })
	if sharedErr != nil {
		tb.Fatalf("starting the shared node: %v", sharedErr)
	}
	return shared
}

// nameSeq numbers the names uniqueName hands out.
var nameSeq atomic.Uint64

// uniqueName returns base with a suffix that no other call in this process
// gets: for names a test creates on the shared node, which outlives one
// run of the test (go test -count N).
func uniqueName(base string) string { return fmt.Sprintf("%s-%d", base, nameSeq.Add(1)) }

// MustStartNode starts a node of its own for tb and stops it when tb ends.
func MustStartNode(tb testing.TB) *node {
	tb.Helper()
	n, err := startNode()
	if err != nil {
		tb.Fatalf("starting a node: %v", err)
	}
	tb.Cleanup(func() {
		n.Stop()
		os.RemoveAll(n.info.DataDir)
	})
	return n
}

func startNode() (*node, error) { return startNodeWith(nil) }

// startNodeWith starts a development node whose config modify (if not nil)
// changes first.
func startNodeWith(modify func(*server.Config)) (*node, error) {
	cfg, info, err := server.DevConfig("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if modify != nil {
		modify(cfg)
	}
	srv, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		os.RemoveAll(info.DataDir)
		return nil, err
	}
	n, err := newNode(srv, cfg, info)
	if err != nil {
		srv.Close()
		os.RemoveAll(info.DataDir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.done = cancel, make(chan error, 1)
	go func() { n.done <- srv.Run(ctx) }()
	readyCtx, cancelReady := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelReady()
	if err := srv.WaitReady(readyCtx); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func newNode(srv *server.Server, cfg *server.Config, info server.DevInfo) (*node, error) {
	caPEM, err := os.ReadFile(info.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in " + info.CAFile)
	}
	key, err := api.ParseAPIKey(info.APIKey)
	if err != nil {
		return nil, err
	}
	n := &node{srv: srv, cfg: cfg, info: info, url: "https://" + srv.Addr(), pool: pool}
	if n.admin, err = n.clientWith(key); err != nil {
		return nil, err
	}
	n.anon, _ = n.clientWith(nil)
	return n, nil
}

// Stop stops the node and waits for Run to return.
func (n *node) Stop() {
	n.stopMu.Do(func() {
		n.stop()
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
		}
	})
}

func (n *node) clientWith(key *api.APIKey) (*http.Client, error) {
	cfg := &tls.Config{RootCAs: n.pool, MinVersion: tls.VersionTLS12}
	if key != nil {
		cert, err := key.Certificate()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// MustClient returns a client with the certificate of a new API key and
// the key itself; its identity is unknown to the node until added.
func (n *node) MustClient(tb testing.TB) (*http.Client, *api.APIKey) {
	tb.Helper()
	key, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := n.clientWith(key)
	if err != nil {
		tb.Fatal(err)
	}
	return c, key
}

// response is an answer of the node.
type response struct {
	Status int
	Body   []byte
}

// Message returns the "message" of an error answer.
func (r response) Message() string {
	var e api.ErrorResponse
	json.Unmarshal(r.Body, &e)
	return e.Message
}

// MustDo sends a request with body (nil, []byte, or a value to encode as
// JSON) to path (raw: escapes are sent as written) and returns the answer.
func (n *node) MustDo(tb testing.TB, c *http.Client, method, path string, body any) response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/json" {
		tb.Errorf("%s %s: error answer with Content-Type %q, want application/json", method, path, resp.Header.Get("Content-Type"))
	}
	return response{Status: resp.StatusCode, Body: data}
}

// MustOK is MustDo that fails tb unless the answer is 200, and decodes it
// into out if out is not nil.
func (n *node) MustOK(tb testing.TB, c *http.Client, method, path string, body, out any) {
	tb.Helper()
	r := n.MustDo(tb, c, method, path, body)
	if r.Status != http.StatusOK {
		tb.Fatalf("%s %s = %d %s, want 200", method, path, r.Status, r.Body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			tb.Fatalf("%s %s: decoding %s: %v", method, path, r.Body, err)
		}
	}
}

// MustListKeys returns the names of every key in the admin's enclave.
func (n *node) MustListKeys(tb testing.TB) []string {
	tb.Helper()
	var names []string
	cont := ""
	for {
		var page api.ListResponse
		n.MustOK(tb, n.admin, http.MethodGet, "/v1/key/list/*?limit=1000&continue="+cont, nil, &page)
		names = append(names, page.Names...)
		if page.ContinueAt == "" {
			return names
		}
		cont = page.ContinueAt
	}
}

func TestNodeRoutes(t *testing.T) {
	n := MustSharedNode(t)
	t.Run("Version", func(t *testing.T) {
		var v api.VersionResponse
		n.MustOK(t, n.anon, http.MethodGet, "/version", nil, &v)
		if v.Version != server.Version {
			t.Errorf("version = %q, want %q", v.Version, server.Version)
		}
		// Without a client certificate: a key holder not let in yet needs
		// the cluster id for an identity proof.
		var s api.StatusResponse
		n.MustOK(t, n.admin, http.MethodGet, "/v1/status", nil, &s)
		if !strings.HasPrefix(v.ClusterID, "c-") || s.ClusterID != v.ClusterID {
			t.Errorf("cluster id %q in /version, %q in /v1/status; want the same c-…", v.ClusterID, s.ClusterID)
		}
	})
	for _, path := range []string{"/v1/health/live", "/v1/health/ready"} {
		t.Run(path, func(t *testing.T) {
			var h api.HealthResponse
			n.MustOK(t, n.anon, http.MethodGet, path, nil, &h)
			if h.Status != "ok" {
				t.Errorf("status = %q, want ok", h.Status)
			}
		})
	}
	t.Run("Ready", func(t *testing.T) {
		n.MustOK(t, n.admin, http.MethodGet, "/v1/ready", nil, nil)
	})
	t.Run("Status", func(t *testing.T) {
		var s api.StatusResponse
		n.MustOK(t, n.admin, http.MethodGet, "/v1/status", nil, &s)
		if s.NodeID != "dev" || !s.Leader || s.Version != server.Version || s.OS == "" || s.Arch == "" {
			t.Errorf("status = %+v, want node dev, the leader", s)
		}
	})
	t.Run("Self", func(t *testing.T) {
		var s api.SelfResponse
		n.MustOK(t, n.admin, http.MethodGet, "/v1/identity/self/describe", nil, &s)
		key, _ := api.ParseAPIKey(n.info.APIKey)
		if s.Identity != key.Identity() || !s.ClusterAdmin {
			t.Errorf("self = %+v, want the cluster admin %s", s, key.Identity())
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/metrics-probe-missing", nil); r.Status != http.StatusNotFound {
			t.Fatalf("describe = %d, want 404", r.Status)
		}
		r := n.MustDo(t, n.admin, http.MethodGet, "/metrics", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /metrics = %d %s", r.Status, r.Body)
		}
		text := string(r.Body)
		want := `minkms_http_requests_total{code="404",method="GET",route="/v1/key/describe/{name}"}`
		if !strings.Contains(text, want) {
			t.Errorf("metrics do not contain %s", want)
		}
		if !strings.Contains(text, "minkms_http_request_duration_seconds_bucket") {
			t.Error("metrics have no request latency histogram")
		}
		if strings.Contains(text, "metrics-probe-missing") {
			t.Error("metrics contain a raw key name; routes must be counted by pattern")
		}
	})
}

func TestWrongRootKey(t *testing.T) {
	cfg, info, err := server.DevConfig("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(info.DataDir) })
	rightKey := cfg.RootKey.Key
	srv, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	cfg.RootKey.Key = server.GenerateRootKey()
	srv, err = server.New(context.Background(), cfg, nil)
	if err == nil {
		srv.Close()
		t.Fatal("New with another root key succeeded")
	}
	if !errors.Is(err, server.ErrRootKey) || !errors.Is(err, storage.ErrWrongRootKey) {
		t.Errorf("New = %v, want an error wrapping ErrRootKey and storage.ErrWrongRootKey", err)
	}
	if !strings.Contains(err.Error(), "root key does not open the state") {
		t.Errorf("New error %q does not say what is wrong", err)
	}
	if strings.Contains(err.Error(), strings.TrimPrefix(cfg.RootKey.Key, "r1:")) {
		t.Error("the error contains the root key")
	}

	cfg.RootKey.Key = rightKey
	srv, err = server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New with the right root key after a refusal = %v", err)
	}
	srv.Close()
}

func TestRootKeySources(t *testing.T) {
	key := server.GenerateRootKey()
	dir := t.TempDir()
	file := dir + "/root.key"
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MINKMS_TEST_ROOT_KEY", key)
	t.Setenv("MINKMS_TEST_BAD_ROOT_KEY", "r1:nope")
	tests := []struct {
		name string
		src  server.RootKeyConfig
		want string // "" for success
	}{
		{"File", server.RootKeyConfig{File: file}, ""},
		{"Env", server.RootKeyConfig{Env: "MINKMS_TEST_ROOT_KEY"}, ""},
		{"EnvUnset", server.RootKeyConfig{Env: "MINKMS_TEST_UNSET_ROOT_KEY"}, "MINKMS_TEST_UNSET_ROOT_KEY is not set"},
		{"EnvInvalid", server.RootKeyConfig{Env: "MINKMS_TEST_BAD_ROOT_KEY"}, "invalid root key"},
		{"FileMissing", server.RootKeyConfig{File: dir + "/nope"}, "reading the root key file"},
		{"None", server.RootKeyConfig{}, "none configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, info, err := server.DevConfig("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(info.DataDir) })
			cfg.RootKey = tt.src
			srv, err := server.New(context.Background(), cfg, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				srv.Close()
				return
			}
			if err == nil {
				srv.Close()
				t.Fatalf("New succeeded, want an error containing %q", tt.want)
			}
			if !errors.Is(err, server.ErrRootKey) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want ErrRootKey and %q", err, tt.want)
			}
		})
	}
}

// mustReady waits until srv is ready to serve.
func mustReady(tb testing.TB, srv *server.Server) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
}
