package api_test

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/minkms/minkms/api"
)

func TestTLSRoutes(t *testing.T) {
	key := MustGenerateAPIKey(t)
	t.Run("TLSStatus", func(t *testing.T) {
		srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/v1/tls/status" {
				t.Errorf("request = %s %s, want GET /v1/tls/status", r.Method, r.URL.Path)
			}
			writeJSON(w, http.StatusOK, `{"pairs":[{"cert":"/c","key":"/k","subject":"CN=n1","sans":["n1"],
				"serial":"1f","not_after":"2026-01-02T03:04:05Z","key_algorithm":"ECDSA P-256",
				"consecutive_failures":2,"last_error_reason":"expired","differs_from_disk":true}],
				"ca":{"path":"/ca","certificates":[{"subject":"CN=CA"}]},"effective_expiry":"2026-01-02T03:04:05Z"}`)
		})
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		got, err := c.TLSStatus(MustContext(t))
		if err != nil {
			t.Fatal(err)
		}
		want := &api.TLSStatus{
			Pairs: []api.TLSPairStatus{{
				Cert: "/c", Key: "/k",
				TLSCertificateInfo:  api.TLSCertificateInfo{Subject: "CN=n1", SANs: []string{"n1"}, Serial: "1f", NotAfter: created},
				KeyAlgorithm:        "ECDSA P-256",
				LastErrorReason:     "expired",
				ConsecutiveFailures: 2,
				DiffersFromDisk:     true,
			}},
			CA:              api.TLSCAStatus{Path: "/ca", Certificates: []api.TLSCertificateInfo{{Subject: "CN=CA"}}},
			EffectiveExpiry: created,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("status = %+v, want %+v", got, want)
		}
	})
	t.Run("ReloadTLS", func(t *testing.T) {
		srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v1/tls/reload" {
				t.Errorf("request = %s %s, want POST /v1/tls/reload", r.Method, r.URL.Path)
			}
			writeJSON(w, http.StatusOK, `{"time":"2026-01-02T03:04:05Z","pairs":[
				{"cert":"/a","key":"/a.key","result":"reloaded"},
				{"cert":"/b","key":"/b.key","result":"failed","reason":"key_mismatch","error":"/b.key: key_mismatch: …"}],
				"ca":{"path":"/ca","result":"unchanged"},"rotated":true}`)
		})
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		got, err := c.ReloadTLS(MustContext(t))
		if err != nil {
			t.Fatal(err)
		}
		want := &api.TLSReloadResult{
			Time: created,
			Pairs: []api.TLSPairResult{
				{Cert: "/a", Key: "/a.key", Outcome: api.TLSReloaded},
				{Cert: "/b", Key: "/b.key", Outcome: api.TLSFailed, Reason: "key_mismatch", Error: "/b.key: key_mismatch: …"},
			},
			CA:      api.TLSFileResult{Path: "/ca", Outcome: api.TLSUnchanged},
			Rotated: true,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("result = %+v, want %+v", got, want)
		}
		if !got.Failed() {
			t.Error("Failed() = false for a result with a failed pair")
		}
	})
	t.Run("ErrNotAllowed", func(t *testing.T) {
		srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) { writeError(w, api.ErrNotAllowed) })
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		if _, err := c.TLSStatus(MustContext(t)); !errors.Is(err, api.ErrNotAllowed) {
			t.Errorf("TLSStatus: error = %v, want ErrNotAllowed", err)
		}
		if _, err := c.ReloadTLS(MustContext(t)); !errors.Is(err, api.ErrNotAllowed) {
			t.Errorf("ReloadTLS: error = %v, want ErrNotAllowed", err)
		}
	})
}

func TestTLSReloadResultFailed(t *testing.T) {
	tests := []struct {
		name string
		res  api.TLSReloadResult
		want bool
	}{
		{"Unchanged", api.TLSReloadResult{Pairs: []api.TLSPairResult{{Outcome: api.TLSUnchanged}}, CA: api.TLSFileResult{Outcome: api.TLSUnchanged}}, false},
		{"Reloaded", api.TLSReloadResult{Pairs: []api.TLSPairResult{{Outcome: api.TLSReloaded}}, CA: api.TLSFileResult{Outcome: api.TLSReloaded}}, false},
		{"PairFailed", api.TLSReloadResult{Pairs: []api.TLSPairResult{{Outcome: api.TLSReloaded}, {Outcome: api.TLSFailed}}}, true},
		{"CAFailed", api.TLSReloadResult{CA: api.TLSFileResult{Outcome: api.TLSFailed}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.res.Failed(); got != tt.want {
				t.Errorf("Failed() = %v, want %v", got, tt.want)
			}
		})
	}
}
