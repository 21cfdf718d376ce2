package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/server/journal"
)

// TestBatchSlots: a node runs at most its batch slots' worth of batches at
// once; one more waits, and once its request timeout ends waiting it is
// answered 503 with Retry-After (the SDK then retries); with a slot free
// it runs.
func TestBatchSlots(t *testing.T) {
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("the batch admin's public key")}
	st := kmstest.New(t)
	svc := kms.New(st, st, kms.Options{Admins: []kms.Identity{kms.IdentityOf(cert)}})
	ctx := context.Background()
	if err := svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	caller, err := svc.Caller(ctx, kms.IdentityOf(cert))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, caller, caller.Enclave, "slots", kms.AES256); err != nil {
		t.Fatal(err)
	}
	registry, metrics, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	j := journal.New(slog.DiscardHandler, journal.Options{})
	h := &handler{svc: svc, log: slog.New(j.Handler()), metrics: metrics, registry: registry,
		timeout: 200 * time.Millisecond, journal: j, batchSlots: make(chan struct{}, 1)}
	mux := h.routes()
	batch := func() *httptest.ResponseRecorder {
		body := []byte(`{"items":[{"op":"generate","name":"slots"}]}`)
		connCtx := context.WithValue(ctx, trackedConnKey{}, &trackedConn{})
		r := httptest.NewRequestWithContext(connCtx, http.MethodPost, "/v1/enclaves/default/batch", bytes.NewReader(body))
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	if w := batch(); w.Code != http.StatusOK {
		t.Fatalf("a batch with a free slot: %d %s", w.Code, w.Body)
	}
	h.batchSlots <- struct{}{} // another batch holds the only slot
	w := batch()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !bytes.Contains(w.Body.Bytes(), []byte("overloaded")) {
		t.Errorf("a batch without a slot: %d, Retry-After %q, %s; want 503 overloaded with Retry-After",
			w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	<-h.batchSlots
	if w := batch(); w.Code != http.StatusOK {
		t.Fatalf("a batch once the slot is free: %d %s", w.Code, w.Body)
	}
	if len(h.batchSlots) != 0 {
		t.Errorf("%d slots still taken after the batches ended", len(h.batchSlots))
	}
}
