package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/tlsmgr"
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

// TestTLSWireTypes checks that the SDK's types read what the server's
// certificate manager writes without losing or inventing a field: the
// server's JSON decodes with no unknown field and encodes back to the same
// document. The fixtures set every field, so a field added to tlsmgr fails
// the test until the SDK has it too.
func TestTLSWireTypes(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 4, h, 5, 6, 789, time.UTC) }
	cert := tlsmgr.CertificateInfo{
		Subject: "CN=n1.kms.example.net", SANs: []string{"n1.kms.example.net", "10.0.0.11"},
		Issuer: "CN=minkms CA", Serial: "1a2b", Fingerprint: "00ff",
		NotBefore: at(1), NotAfter: at(2),
	}
	status := tlsmgr.Status{
		Pairs: []tlsmgr.PairStatus{{
			Cert: "/etc/minkms/tls/public.crt", Key: "/etc/minkms/tls/private.key",
			CertificateInfo: cert, EffectiveExpiry: at(3), KeyAlgorithm: "ECDSA P-256",
			LastCheck: at(4), LastReload: at(5), LastRotation: at(6),
			LastError: "key does not match", LastErrorReason: tlsmgr.ReasonKeyMismatch,
			ConsecutiveFailures: 3, DiffersFromDisk: true,
		}},
		CA: tlsmgr.CAStatus{
			Path: "/etc/minkms/ca", Certificates: []tlsmgr.CertificateInfo{cert},
			LastCheck: at(7), LastReload: at(8),
			LastError: "no certificate", LastErrorReason: tlsmgr.ReasonEmpty,
			ConsecutiveFailures: 1, DiffersFromDisk: true,
		},
		LastCheck: at(9), EffectiveExpiry: at(10),
	}
	reload := tlsmgr.ReloadResult{
		Time: at(11),
		Pairs: []tlsmgr.PairResult{{
			Cert: "/c", Key: "/k", Outcome: tlsmgr.Failed, Reason: tlsmgr.ReasonExpired, Error: "expired on …",
		}},
		CA:      tlsmgr.FileResult{Path: "/ca", Outcome: tlsmgr.Reloaded, Reason: tlsmgr.ReasonChain, Error: "does not chain"},
		Rotated: true,
	}
	tests := []struct {
		name   string
		server any
		sdk    any
	}{
		{"Status", status, new(api.TLSStatus)},
		{"ReloadResult", reload, new(api.TLSReloadResult)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustSetEveryField(t, reflect.ValueOf(tt.server), tt.name)
			wire, err := json.Marshal(tt.server)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(wire))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.sdk); err != nil {
				t.Fatalf("the SDK type does not read the server's JSON: %v\n%s", err, wire)
			}
			back, err := json.Marshal(tt.sdk)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, wire) {
				t.Errorf("the SDK type changes the document:\nserver: %s\nSDK:    %s", wire, back)
			}
		})
	}
	t.Run("Outcomes", func(t *testing.T) {
		for _, o := range []struct {
			sdk    api.TLSOutcome
			server tlsmgr.Outcome
		}{{api.TLSUnchanged, tlsmgr.Unchanged}, {api.TLSReloaded, tlsmgr.Reloaded}, {api.TLSFailed, tlsmgr.Failed}} {
			if string(o.sdk) != string(o.server) {
				t.Errorf("api outcome %q, tlsmgr outcome %q", o.sdk, o.server)
			}
		}
	})
}

// mustSetEveryField fails the test if v holds a zero field, element or
// slice anywhere: a fixture that leaves a field out cannot show it is
// carried.
func mustSetEveryField(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.IsZero() {
		t.Fatalf("the fixture leaves %s unset", path)
	}
	switch v.Kind() {
	case reflect.Struct:
		if _, ok := v.Interface().(time.Time); ok {
			return
		}
		for i := range v.NumField() {
			mustSetEveryField(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		for i := range v.Len() {
			mustSetEveryField(t, v.Index(i), path+"[]")
		}
	}
}
