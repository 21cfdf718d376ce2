package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// checkFastRoute fails if fastRoutes takes method and path to another
// route, or with other parameters, than chi's tree does.
func checkFastRoute(t *testing.T, mux *chi.Mux, f *fastRoutes, method, path string) (took bool) {
	t.Helper()
	fr, enclave, name := f.match(method, path)
	if fr == nil {
		return false
	}
	rctx := chi.NewRouteContext()
	pattern := mux.Find(rctx, method, path)
	if pattern != fr.pattern {
		t.Errorf("%s %q: fastRoutes routes it to %q, chi to %q", method, path, fr.pattern, pattern)
		return true
	}
	want := map[string]string{"name": name}
	if enclave != "" {
		want["enclave"] = enclave
	}
	got := map[string]string{}
	for i, k := range rctx.URLParams.Keys {
		got[k] = rctx.URLParams.Values[i]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %q: fastRoutes has parameters %v, chi %v", method, path, want, got)
	}
	return true
}

func testRouter(tb testing.TB) (*chi.Mux, *fastRoutes) {
	h := newKeyHandler(tb, &x509.Certificate{RawSubjectPublicKeyInfo: []byte("k")}, "k")
	mux := h.router()
	f := &fastRoutes{}
	f.build(mux)
	return mux, f
}

// TestFastRoutesAgreeWithChi: the key operations are routed to the route
// chi would take them to, with the same parameters; the rest is left to
// chi.
func TestFastRoutesAgreeWithChi(t *testing.T) {
	mux, f := testRouter(t)
	if len(f.native) != len(fastOps) || len(f.kes) != len(fastOps) {
		t.Fatalf("fastRoutes found %d native and %d KES routes of %d operations", len(f.native), len(f.kes), len(fastOps))
	}
	for _, op := range fastOps {
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			for _, path := range []string{"/v1/enclaves/e/keys/k/" + op, "/v1/enclaves/my-enclave/keys/a.b_c-d/" + op, "/v1/key/" + op + "/k"} {
				if !checkFastRoute(t, mux, f, m, path) {
					t.Errorf("fastRoutes does not take %s %s", m, path)
				}
			}
		}
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/enclaves/e/keys/k/generate"},
		{http.MethodDelete, "/v1/key/generate/k"},
		{http.MethodPut, "/v1/enclaves/e/keys/k/rotate"},
		{http.MethodPut, "/v1/enclaves/e/keys/k"},
		{http.MethodPut, "/v1/enclaves/e/keys/k/generate/"},
		{http.MethodPut, "/v1/enclaves/e/keys/k/generate/x"},
		{http.MethodPut, "/v1/enclaves/e/keys//generate"},
		{http.MethodPut, "/v1/enclaves//keys/k/generate"},
		{http.MethodPut, "/v1/enclaves/e/identities/k/generate"},
		{http.MethodPut, "/v1/key/generate/"},
		{http.MethodPut, "/v1/key/generate/k/"},
		{http.MethodPut, "/v1/key/generate/a/b"},
		{http.MethodPut, "/v1/key/create/k"},
		{http.MethodPut, "/v1/key/generate"},
		{http.MethodPut, "/v1/enclaves/e/keys/k/versions/1"},
	} {
		if checkFastRoute(t, mux, f, tc.method, tc.path) {
			t.Errorf("fastRoutes took %s %s", tc.method, tc.path)
		}
	}
}

// TestFastRoutesServe: a key operation through the whole router answers
// as through chi alone, and an escaped path is left to chi.
func TestFastRoutesServe(t *testing.T) {
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("the admin's key")}
	h := newKeyHandler(t, cert, "k")
	routes := h.routes()
	chiOnly := h.router() // its own fastRoutes, unused below: Find is chi's
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/enclaves/default/keys/k/generate", http.StatusOK},
		{"/v1/key/generate/k", http.StatusOK},
		{"/v1/enclaves/default/keys/missing/generate", http.StatusNotFound},
		{"/v1/enclaves/default/keys/bad%20name/generate", http.StatusBadRequest},
		{"/v1/enclaves/no-such-enclave/keys/k/generate", http.StatusNotFound},
	} {
		r := httptest.NewRequest(http.MethodPut, tc.path, strings.NewReader(`{}`))
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("PUT %s: %d %s, want %d", tc.path, w.Code, w.Body, tc.status)
		}
		if pattern := chiOnly.Find(chi.NewRouteContext(), http.MethodPut, r.URL.Path); pattern == "" {
			t.Errorf("chi has no route for %s", tc.path)
		}
	}
}

// FuzzFastRoutes: whatever the path, fastRoutes never routes it otherwise
// than chi.
func FuzzFastRoutes(f *testing.F) {
	for _, s := range []string{"/v1/enclaves/e/keys/k/generate", "/v1/key/encrypt/k", "/v1/enclaves/e/keys/k/versions/1",
		"/v1/key/generate/k/", "/v1/enclaves//keys/k/hmac", "/v1/enclaves/e/keys/k/rewrap/"} {
		f.Add(s, true)
	}
	mux, fr := testRouter(f)
	f.Fuzz(func(t *testing.T, path string, post bool) {
		method := http.MethodPut
		if post {
			method = http.MethodPost
		}
		checkFastRoute(t, mux, fr, method, path)
	})
}
