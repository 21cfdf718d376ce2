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
	st := kmstest.New(b)
	svc := kms.New(st, st, kms.Options{Admins: []kms.Identity{kms.IdentityOf(cert)}, CacheMaxEntries: kms.DefaultCacheMaxEntries})
	st.OnApply(svc.Invalidate)
	ctx := context.Background()
	if err := svc.Init(ctx); err != nil {
		b.Fatal(err)
	}
	caller, err := svc.Caller(ctx, kms.IdentityOf(cert))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, caller, caller.Enclave, "bench-generate", kms.AES256); err != nil {
		b.Fatal(err)
	}
	registry, metrics, err := newRegistry()
	if err != nil {
		b.Fatal(err)
	}
	j := journal.New(slog.DiscardHandler, journal.Options{})
	log := slog.New(j.Handler())
	audit, err := newAuditTrail(j, log, LogConfig{AuditFile: filepath.Join(b.TempDir(), "audit.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer audit.Close()
	h := &handler{svc: svc, log: log, metrics: metrics, registry: registry, timeout: 10 * time.Second, journal: j, audit: audit}
	mux := h.routes()

	body := []byte(`{"context":"YnVja2V0L29iamVjdA=="}`)
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	connCtx := context.WithValue(ctx, trackedConnKey{}, &trackedConn{}) // as ConnContext does
	w := &discardWriter{h: make(http.Header)}
	r := httptest.NewRequestWithContext(connCtx, http.MethodPut, "/v1/key/generate/bench-generate", bytes.NewReader(body))
	r.TLS = state
	if mux.ServeHTTP(w, r); w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequestWithContext(connCtx, http.MethodPut, "/v1/key/generate/bench-generate", bytes.NewReader(body))
		r.TLS = state
		w.h = make(http.Header)
		mux.ServeHTTP(w, r)
	}
}
