package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/server/journal"
)

// discardWriter is a ResponseWriter that keeps nothing but its headers,
// reset per request, as net/http's response is.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// newKeyHandler returns a handler over a kms (with its cache, as a node
// has) whose only admin is cert's identity and which holds the AES key
// name in the default enclave; no audit trail, no timeout.
func newKeyHandler(tb testing.TB, cert *x509.Certificate, name string) *handler {
	tb.Helper()
	st := kmstest.New(tb)
	svc := kms.New(st, st, kms.Options{Admins: []kms.Identity{kms.IdentityOf(cert)}, CacheMaxEntries: kms.DefaultCacheMaxEntries})
	st.OnApply(svc.Invalidate)
	ctx := context.Background()
	if err := svc.Init(ctx); err != nil {
		tb.Fatal(err)
	}
	caller, err := svc.Caller(ctx, kms.IdentityOf(cert))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, caller, caller.Enclave, name, kms.AES256); err != nil {
		tb.Fatal(err)
	}
	registry, metrics, err := newRegistry()
	if err != nil {
		tb.Fatal(err)
	}
	j := journal.New(slog.DiscardHandler, journal.Options{})
	return &handler{svc: svc, log: slog.New(j.Handler()), metrics: metrics, registry: registry, journal: j}
}

// BenchmarkGenerateKeyHandler measures the server side of a KES data key
// request alone, on one goroutine, without TLS and net/http: the
// middleware, routing, authentication, metrics, the audit trail to a file
// (asynchronous, the default), kms with its cache (the server's default)
// and the JSON answer. Its ns/op is the
// node's CPU per request above the bare HTTPS stack, steadier on a shared
// machine than BenchmarkGenerateKey's:
//
//	go test -run '^$' -bench GenerateKeyHandler -benchmem ./server/
func BenchmarkGenerateKeyHandler(b *testing.B) {
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("the bench admin's public key")}
	h := newKeyHandler(b, cert, "bench-generate")
	h.timeout = 10 * time.Second
	audit, err := newAuditTrail(h.journal, h.log, LogConfig{AuditFile: filepath.Join(b.TempDir(), "audit.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer audit.Close()
	h.audit = audit
	mux := h.routes()

	body := []byte(`{"context":"YnVja2V0L29iamVjdA=="}`)
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	connCtx := context.WithValue(context.Background(), trackedConnKey{}, &trackedConn{}) // as ConnContext does
	for _, route := range []struct{ name, path string }{
		{"kes", "/v1/key/generate/bench-generate"},
		{"native", "/v1/enclaves/" + kms.DefaultEnclave + "/keys/bench-generate/generate"},
	} {
		b.Run(route.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header)}
			r := httptest.NewRequestWithContext(connCtx, http.MethodPut, route.path, bytes.NewReader(body))
			r.TLS = state
			if mux.ServeHTTP(w, r); w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := httptest.NewRequestWithContext(connCtx, http.MethodPut, route.path, bytes.NewReader(body))
				r.TLS = state
				w.h = make(http.Header)
				mux.ServeHTTP(w, r)
			}
		})
	}
}
