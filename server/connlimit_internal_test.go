package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minkms/minkms/kms"
)

// limitedServer serves a handler over a connLimiter as the node does: the
// limiter below TLS, its hooks on the http.Server. GET /auth marks the
// connection authenticated, as the authentication middleware does.
func limitedServer(t *testing.T, limits connLimits, http2 bool) (*httptest.Server, *connLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(ln, limits, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth" {
			markAuthenticated(r.Context())
		}
		io.WriteString(w, "ok")
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.EnableHTTP2 = http2
	srv.Config.IdleTimeout = time.Minute
	srv.Config.ReadHeaderTimeout = time.Minute
	srv.Config.ConnState = l.ConnState
	srv.Config.ConnContext = l.ConnContext
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short by the idle timer
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, l
}

// rawClient is one HTTP/1.1 connection whose requests the test sends by hand.
type rawClient struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dialRaw(srv *httptest.Server, local string) (*rawClient, error) {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := tls.DialWithDialer(d, "tcp", srv.Listener.Addr().String(),
		&tls.Config{RootCAs: pool, ServerName: "example.com", NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	return &rawClient{conn: conn, r: bufio.NewReader(conn)}, nil
}

// get sends GET path on the connection and reads the answer.
func (c *rawClient) get(path string) error {
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c.conn, "GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n", path); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// closedBy waits until the server closes the connection (a read returns an
// error) or the deadline passes.
func (c *rawClient) closedBy(deadline time.Time) bool {
	c.conn.SetReadDeadline(deadline)
	_, err := c.r.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func mustDialGet(t *testing.T, srv *httptest.Server, local, path string) *rawClient {
	t.Helper()
	c, err := dialRaw(srv, local)
	if err == nil {
		err = c.get(path)
	}
	if err != nil {
		t.Fatalf("connection from %s: %v", local, err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnLimiterMaxConnections(t *testing.T) {
	srv, l := limitedServer(t, connLimits{Max: 3, UnauthIdle: time.Minute}, false)
	var clients []*rawClient
	for range 3 {
		clients = append(clients, mustDialGet(t, srv, "", "/health"))
	}
	if got := l.Open(); got != 3 {
		t.Fatalf("Open() = %d, want 3", got)
	}

	t.Run("Refused", func(t *testing.T) {
		c, err := dialRaw(srv, "")
		if err == nil {
			err = c.get("/health")
			c.conn.Close()
		}
		if err == nil {
			t.Fatal("a fourth connection was served; want it closed before the TLS handshake")
		}
		if got := metricValue(t, l, "minkms_api_connections_refused_total", refusedMaxConnections); got != 1 {
			t.Errorf("refused{reason=max_connections} = %v, want 1", got)
		}
		if got := metricValue(t, l, "minkms_api_connections", ""); got != 3 {
			t.Errorf("minkms_api_connections = %v, want 3", got)
		}
		if got := l.Open(); got != 3 {
			t.Errorf("Open() = %d after a refusal, want 3", got)
		}
	})

	t.Run("FreedByClose", func(t *testing.T) {
		clients[0].conn.Close()
		waitUntil(t, "the closed connection to be counted out", func() bool { return l.Open() == 2 })
		mustDialGet(t, srv, "", "/health")
		if got := l.Open(); got != 3 {
			t.Errorf("Open() = %d, want 3", got)
		}
	})
}

func TestConnLimiterMaxPerIP(t *testing.T) {
	srv, l := limitedServer(t, connLimits{Max: 100, MaxPerIP: 2, UnauthIdle: time.Minute}, false)
	mustDialGet(t, srv, "127.0.0.1", "/health")
	mustDialGet(t, srv, "127.0.0.1", "/health")
	c, err := dialRaw(srv, "127.0.0.1")
	if err == nil {
		err = c.get("/health")
		c.conn.Close()
	}
	if err == nil {
		t.Fatal("a third connection from 127.0.0.1 was served; want it refused")
	}
	if got := metricValue(t, l, "minkms_api_connections_refused_total", refusedMaxPerIP); got != 1 {
		t.Errorf("refused{reason=max_connections_per_ip} = %v, want 1", got)
	}
	if got := metricValue(t, l, "minkms_api_connections_refused_total", refusedMaxConnections); got != 0 {
		t.Errorf("refused{reason=max_connections} = %v, want 0", got)
	}
	// Another address is not affected (on Linux all of 127/8 is loopback).
	if c, err := dialRaw(srv, "127.0.0.2"); err != nil {
		t.Logf("cannot dial from 127.0.0.2 here (%v): skipping the other-address check", err)
	} else {
		c.conn.Close()
		mustDialGet(t, srv, "127.0.0.2", "/health")
	}
}

// TestConnLimiterUnauthenticatedIdle: a connection that made no
// authenticated request is closed after UnauthIdle, whether it never sent
// anything or idles after a request; an authenticated one stays open.
func TestConnLimiterUnauthenticatedIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	srv, l := limitedServer(t, connLimits{Max: 100, UnauthIdle: idle}, false)

	authed := mustDialGet(t, srv, "", "/auth") // idles first: it would be closed first
	start := time.Now()
	unauthed := mustDialGet(t, srv, "", "/health")
	silent, err := net.Dial("tcp", srv.Listener.Addr().String()) // no handshake, no request
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	if !unauthed.closedBy(time.Now().Add(10 * time.Second)) {
		t.Fatal("the unauthenticated idle connection is still open after 10s")
	}
	if d := time.Since(start); d < idle {
		t.Errorf("the unauthenticated connection was closed after %s, before the idle timeout %s", d, idle)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the silent connection is still open: %v", err)
	}
	waitUntil(t, "both to be counted out", func() bool { return l.Open() == 1 })
	if got := l.idleClose.Load(); got != 2 {
		t.Errorf("closed for idling: %d, want 2", got)
	}
	if err := authed.get("/health"); err != nil {
		t.Fatalf("the authenticated connection was closed: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestConnLimiterUnauthenticatedIdleHTTP2: the same over HTTP/2, whose
// server runs the ConnState hooks and passes ConnContext on its own.
func TestConnLimiterUnauthenticatedIdleHTTP2(t *testing.T) {
	srv, l := limitedServer(t, connLimits{Max: 100, UnauthIdle: 200 * time.Millisecond}, true)
	client := func() *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone() // srv.Client() is one client
		tr.ForceAttemptHTTP2 = true
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	authed, unauthed := client(), client()

	get := func(c *http.Client, path string) (reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, srv.URL+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s answered over %s, want HTTP/2", path, resp.Proto)
		}
		return reused
	}
	get(authed, "/auth")
	get(unauthed, "/health")
	waitUntil(t, "the unauthenticated connection to be closed", func() bool { return l.idleClose.Load() == 1 && l.Open() == 1 })
	if !get(authed, "/health") {
		t.Error("the authenticated HTTP/2 connection was not reused: it was closed")
	}
}

func TestDefaultMaxConnections(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, fallbackMaxConnections},
		{256, 128},
		{1024, 512},
		{2048, 1024},
		{20000, 20000 - connReserve},
		{65536, 65536 - connReserve},
		{1<<63 - 1, maxDefaultConnections},
	} {
		if got := DefaultMaxConnections(tc.nofile); got != tc.want {
			t.Errorf("DefaultMaxConnections(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// metricValue gathers the limiter's metrics and returns the value of name
// (with reason, if not empty).
func metricValue(t *testing.T, l *connLimiter, name, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range l.collectors() {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got string
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" {
					got = lp.GetValue()
				}
			}
			switch {
			case got != reason:
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			default:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{reason=%q}", name, reason)
	return 0
}

// TestAPIConnLimits: max_connections is derived from the open-file limit
// unless set, and a cap above the derived one is warned about.
func TestAPIConnLimits(t *testing.T) {
	nofile, err := openFileLimit()
	if err != nil {
		if runtime.GOOS == "linux" {
			t.Fatal("no open-file limit:", err)
		}
		t.Skip("no open-file limit on this platform:", err)
	}
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cl := apiConnLimits(LimitsConfig{}, logger)
	if want := DefaultMaxConnections(nofile); cl.Max != want || cl.UnauthIdle != DefaultUnauthenticatedIdleTimeout || cl.MaxPerIP != 0 {
		t.Errorf("defaults = %+v, want Max %d, UnauthIdle %s, MaxPerIP 0", cl, want, DefaultUnauthenticatedIdleTimeout)
	}
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("warned about the defaults:\n%s", logs.String())
	}
	cl = apiConnLimits(LimitsConfig{MaxConnections: int(nofile), MaxConnectionsPerIP: 7}, logger)
	if cl.Max != int(nofile) || cl.MaxPerIP != 7 {
		t.Errorf("configured = %+v", cl)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"limits.max_connections leaves fewer file descriptors") {
		t.Errorf("no warning about a cap of the whole open-file limit:\n%s", logs.String())
	}
}

// TestIdentityOfCachedPerConnection: the identity of a connection's client
// certificate is hashed once and reused for the same certificate, a
// different certificate on the connection gets its own identity, and
// without a tracked connection it is computed every time.
func TestIdentityOfCachedPerConnection(t *testing.T) {
	a := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("key a")}
	b := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("key b")}
	tc := &trackedConn{}
	ctx := context.WithValue(context.Background(), trackedConnKey{}, tc)
	if got := identityOf(ctx, a); got != kms.IdentityOf(a) {
		t.Fatalf("identityOf = %s, want %s", got, kms.IdentityOf(a))
	}
	if ci := tc.identity.Load(); ci == nil || ci.cert != a || ci.id != kms.IdentityOf(a) {
		t.Fatalf("the connection keeps %+v", ci)
	}
	tc.identity.Store(&connIdentity{cert: a, id: "h1:cached"})
	if got := identityOf(ctx, a); got != "h1:cached" {
		t.Fatalf("identityOf the same certificate = %s, want the cached identity", got)
	}
	if got := identityOf(ctx, b); got != kms.IdentityOf(b) {
		t.Fatalf("identityOf another certificate = %s, want %s", got, kms.IdentityOf(b))
	}
	if got := identityOf(context.Background(), a); got != kms.IdentityOf(a) {
		t.Fatalf("identityOf without a connection = %s, want %s", got, kms.IdentityOf(a))
	}
}
