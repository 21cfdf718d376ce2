package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTLSRoutes(t *testing.T) {
	n := MustSharedNode(t)
	enclaveAdmin, key := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+key.Identity(),
		api.CreateIdentityRequest{Admin: true}, nil)

	t.Run("Status", func(t *testing.T) {
		var st api.TLSStatus
		n.MustOK(t, n.admin, http.MethodGet, "/v1/tls/status", nil, &st)
		if len(st.Pairs) != 1 || st.Pairs[0].Cert != n.cfg.TLS.Certs[0].Cert {
			t.Errorf("TLS status pairs = %+v, want the node's pair", st.Pairs)
		}
	})
	t.Run("Reload", func(t *testing.T) {
		var res api.TLSReloadResult
		n.MustOK(t, n.admin, http.MethodPost, "/v1/tls/reload", nil, &res)
		if len(res.Pairs) != 1 || res.Pairs[0].Outcome != api.TLSUnchanged {
			t.Errorf("reload = %+v, want one unchanged pair", res)
		}
	})
	for _, route := range []struct{ method, path string }{
		{http.MethodGet, "/v1/tls/status"},
		{http.MethodPost, "/v1/tls/reload"},
	} {
		t.Run("NotClusterAdmin"+route.path, func(t *testing.T) {
			r := n.MustDo(t, enclaveAdmin, route.method, route.path, nil)
			if r.Status != http.StatusForbidden || r.Message() != api.ErrNotAllowed.Message {
				t.Errorf("%s %s as an enclave admin = %d %q, want 403", route.method, route.path, r.Status, r.Message())
			}
		})
	}
	t.Run("EnclaveAdminMayUseKeys", func(t *testing.T) {
		n.MustOK(t, enclaveAdmin, http.MethodPut, "/v1/key/create/enclave-admin-key", nil, nil)
		n.MustOK(t, enclaveAdmin, http.MethodDelete, "/v1/key/delete/enclave-admin-key", nil, nil)
	})
}

// metric returns the value line of a metric sample from /metrics, "" if absent.
func (n *node) metric(tb testing.TB, sample string) string {
	tb.Helper()
	r := n.MustDo(tb, n.admin, http.MethodGet, "/metrics", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if strings.HasPrefix(line, sample+" ") {
			return strings.TrimPrefix(line, sample+" ")
		}
	}
	return ""
}

func TestHandshakeFailuresCounted(t *testing.T) {
	n := MustSharedNode(t)
	const sample = `minkms_tls_handshake_failures_total{listener="api"}`
	before := n.metric(t, sample)
	// A client that does not trust the node's CA aborts the handshake.
	conn, err := tls.Dial("tcp", n.srv.Addr(), &tls.Config{MinVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		t.Fatal("a handshake without the CA succeeded")
	}
	waitFor(t, "the handshake failure to be counted", 10*time.Second, func() bool {
		v := n.metric(t, sample)
		return v != "" && v != before
	})
}

func TestRunStopsAndRestartKeepsState(t *testing.T) {
	cfg, info, err := server.DevConfig("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(info.DataDir) })
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

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
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	mustReady(t, srv)

	plaintext := []byte("plaintext-that-must-never-be-logged")
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/survivor", nil, nil)
	var enc api.EncryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/survivor", api.EncryptKeyRequest{Plaintext: plaintext}, &enc)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after its context is done", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was done")
	}
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts connections after Run returned")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close after Run = %v", err)
	}

	text := logs.String()
	for _, want := range []string{`"msg":"minkms node started"`, `"node_id":"dev"`, `"address":"` + srv.Addr() + `"`, `"data_dir":`, `"msg":"Request"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the log does not contain %s", want)
		}
	}
	rootKey := strings.TrimPrefix(cfg.RootKey.Key, "r1:")
	for _, secret := range []string{string(plaintext), base64.StdEncoding.EncodeToString(plaintext), rootKey} {
		if strings.Contains(text, secret) {
			t.Errorf("the log contains a secret")
		}
	}

	// The same data directory and root key: the key is still there.
	srv2, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New after a restart = %v", err)
	}
	n2, err := newNode(srv2, cfg, info)
	if err != nil {
		srv2.Close()
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	n2.stop, n2.done = cancel2, make(chan error, 1)
	go func() { n2.done <- srv2.Run(ctx2) }()
	t.Cleanup(n2.Stop)
	mustReady(t, srv2)
	var dec api.DecryptKeyResponse
	n2.MustOK(t, n2.admin, http.MethodPut, "/v1/key/decrypt/survivor", api.DecryptKeyRequest{Ciphertext: enc.Ciphertext}, &dec)
	if !bytes.Equal(dec.Plaintext, plaintext) {
		t.Errorf("decrypt after restart = %q, want %q", dec.Plaintext, plaintext)
	}
}

func TestSIGHUPReloadsCertificates(t *testing.T) {
	// Catch SIGHUP in the test too, so that a signal sent before Run has
	// registered cannot end the test process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	n := MustStartNode(t)
	lastCheck := func() time.Time {
		var st api.TLSStatus
		n.MustOK(t, n.admin, http.MethodGet, "/v1/tls/status", nil, &st)
		return st.LastCheck
	}
	before := lastCheck()
	waitFor(t, "a reload after SIGHUP", 10*time.Second, func() bool {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		return lastCheck().After(before)
	})
}

// TestSIGHUPWhileStarting: a SIGHUP that arrives after New and before Run
// (a node may wait long for a raft leader) neither ends the process, as
// SIGHUP does by default, nor gets lost: Run reloads on it. No handler of
// the test's own catches the signal: if the node did not, the test binary
// would die of it.
func TestSIGHUPWhileStarting(t *testing.T) {
	cfg, info, err := server.DevConfig("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(info.DataDir) })
	var logs syncBuffer
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(srv, cfg, info)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.done = cancel, make(chan error, 1)
	go func() { n.done <- srv.Run(ctx) }()
	t.Cleanup(n.Stop)
	waitFor(t, "the reload of the SIGHUP sent before Run", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "TLS certificates reloaded on SIGHUP")
	})
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
