package tlsmgr_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []record
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return nil
}

// warnings returns the messages logged at WARN.
func (l *logRecorder) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var msgs []string
	for _, r := range l.records {
		if r.level == slog.LevelWarn {
			msgs = append(msgs, r.msg)
		}
	}
	return msgs
}

// find returns the first WARN record whose reason attribute is reason.
func (l *logRecorder) find(reason tlsmgr.Reason) (record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.level == slog.LevelWarn && r.attrs["reason"] == string(reason) {
			return r, true
		}
	}
	return record{}, false
}

func (l *logRecorder) reset() {
	l.mu.Lock()
	l.records = nil
	l.mu.Unlock()
}

// fixture is a node's TLS directory with a good pair, a CA bundle, a fake
// clock and a log recorder.
type fixture struct {
	dir   string
	now   time.Time
	clock *testpki.Clock
	ca    *testpki.CA
	leaf  *testpki.Leaf
	pair  tlsmgr.Pair
	caPEM string
	logs  *logRecorder
}

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	f := &fixture{dir: tb.TempDir(), now: now, clock: testpki.NewClock(now), logs: &logRecorder{}}
	f.ca = testpki.MustCA(tb, "test root", now)
	f.caPEM = testpki.MustWrite(tb, f.dir, "ca.pem", f.ca.PEM)
	f.leaf = f.ca.MustIssue(tb, testpki.Options{Now: now})
	f.pair = tlsmgr.Pair{
		Cert: testpki.MustWrite(tb, f.dir, "node.crt", f.leaf.CertPEM),
		Key:  testpki.MustWrite(tb, f.dir, "node.key", f.leaf.KeyPEM),
	}
	return f
}

func (f *fixture) config() tlsmgr.Config {
	return tlsmgr.Config{
		Certs:  []tlsmgr.Pair{f.pair},
		CA:     f.caPEM,
		Host:   "127.0.0.1",
		Logger: slog.New(f.logs),
		Clock:  f.clock,
	}
}

func (f *fixture) mustManager(tb testing.TB, edit ...func(*tlsmgr.Config)) *tlsmgr.Manager {
	tb.Helper()
	cfg := f.config()
	for _, e := range edit {
		e(&cfg)
	}
	m, err := tlsmgr.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return m
}

// issue returns a new certificate of the fixture's CA.
func (f *fixture) issue(tb testing.TB, o testpki.Options) *testpki.Leaf {
	tb.Helper()
	o.Now = f.now
	return f.ca.MustIssue(tb, o)
}

// writePair writes leaf over the fixture's pair in place.
func (f *fixture) writePair(tb testing.TB, leaf *testpki.Leaf) {
	tb.Helper()
	mustWriteFile(tb, f.pair.Cert, leaf.CertPEM)
	mustWriteFile(tb, f.pair.Key, leaf.KeyPEM)
}

func mustWriteFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func servedSerial(m *tlsmgr.Manager) string { return m.Status().Pairs[0].Serial }

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// mustServe serves cfg on a loopback listener and completes every handshake;
// it returns the address.
func mustServe(tb testing.TB, cfg *tls.Config) string {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				c.Write([]byte{1})
			})
		}
	})
	return ln.Addr().String()
}

// handshake dials addr with cfg and returns the server's leaf.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil { // the server accepted our certificate
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitNotified waits for a rotation notification.
func waitNotified(tb testing.TB, ch <-chan struct{}) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		tb.Fatal("no rotation notification within 10s")
	}
}

func (l *logRecorder) findMessage(msg string) (record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.msg == msg {
			return r, true
		}
	}
	return record{}, false
}
