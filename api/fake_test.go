package api_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// fakeServer is a TLS server that demands a client certificate and answers
// 401 unless it is the one of key.
type fakeServer struct {
	*httptest.Server
	key  *api.APIKey
	hits atomic.Int64
}

// MustFakeServer starts a fakeServer that passes authenticated requests to
// h, and stops it when the test ends. The options change its TLS config.
func MustFakeServer(tb testing.TB, key *api.APIKey, h http.HandlerFunc, opts ...func(*tls.Config)) *fakeServer {
	tb.Helper()
	f := &fakeServer{key: key}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeError(w, api.ErrNoCertificate)
			return
		}
		if got := api.IdentityOf(r.TLS.PeerCertificates[0]); got != key.Identity() {
			tb.Errorf("client identity = %s, want %s", got, key.Identity())
			writeError(w, api.ErrNotAllowed)
			return
		}
		h(w, r)
	}))
	f.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	for _, opt := range opts {
		opt(f.TLS)
	}
	f.StartTLS()
	tb.Cleanup(f.Close)
	return f
}

// Hits returns how many requests the server received.
func (f *fakeServer) Hits() int { return int(f.hits.Load()) }

// MustClient returns a client of the given endpoints that trusts the
// servers and presents key.
func MustClient(tb testing.TB, key *api.APIKey, servers []*fakeServer, endpoints ...string) *api.Client {
	tb.Helper()
	pool := x509.NewCertPool()
	for _, s := range servers {
		pool.AddCert(s.Certificate())
	}
	c, err := api.NewClient(api.Config{Endpoints: endpoints, APIKey: key, RootCAs: pool, Timeout: 10 * time.Second})
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// MustContext returns a context that ends before the test's deadline.
func MustContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func writeError(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(api.ErrorResponse{Message: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func newPool(servers ...*fakeServer) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, s := range servers {
		pool.AddCert(s.Certificate())
	}
	return pool
}

// withUntrustedCertificate makes a server present a self-signed certificate
// that no client trusts.
func withUntrustedCertificate(tb testing.TB) func(*tls.Config) {
	tb.Helper()
	cert, err := MustGenerateAPIKey(tb).Certificate()
	if err != nil {
		tb.Fatal(err)
	}
	return func(c *tls.Config) { c.Certificates = []tls.Certificate{cert} }
}
