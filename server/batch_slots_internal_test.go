package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestBatchSlots: a node runs at most its batch slots' worth of batches at
// once; one more waits, and once its request timeout ends waiting it is
// answered 503 with Retry-After (the SDK then retries); with a slot free
// it runs.
func TestBatchSlots(t *testing.T) {
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("the batch admin's public key")}
	h := newKeyHandler(t, cert, "slots")
	h.timeout = 200 * time.Millisecond
	h.batchSlots = make(chan struct{}, 1)
	ctx := context.Background()
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
