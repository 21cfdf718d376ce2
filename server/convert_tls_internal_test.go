package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/tlsmgr"
)

// TestTLSWireTypes checks that the TLS routes answer every field the
// certificate manager reports, in the wire types of package api: the
// fixtures set every field of tlsmgr's types, and the converted answer must
// have every field set too, so a field added on either side fails the test
// until it is carried. The outcomes and reasons keep their words.
func TestTLSWireTypes(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 4, h, 5, 6, 789, time.UTC) }
	status := fullTLSStatus(789)
	reload := tlsmgr.ReloadResult{
		Time: at(11),
		Pairs: []tlsmgr.PairResult{{
			Cert: "/c", Key: "/k", Outcome: tlsmgr.Failed, Reason: tlsmgr.ReasonExpired, Error: "expired on …",
		}},
		CA:      tlsmgr.FileResult{Path: "/ca", Outcome: tlsmgr.Reloaded, Reason: tlsmgr.ReasonChain, Error: "does not chain"},
		Rotated: true,
	}
	mustSetEveryField(t, reflect.ValueOf(status), "tlsmgr.Status")
	mustSetEveryField(t, reflect.ValueOf(reload), "tlsmgr.ReloadResult")
	mustSetEveryField(t, reflect.ValueOf(apiTLSStatus(status)), "api.TLSStatus")
	mustSetEveryField(t, reflect.ValueOf(apiTLSReloadResult(reload)), "api.TLSReloadResult")
	if got := apiTLSStatus(status).Pairs[0].LastErrorReason; got != "key_mismatch" {
		t.Errorf("reason %q, want key_mismatch", got)
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

// fullTLSStatus is a tlsmgr.Status with every field set, its times at nsec
// nanoseconds past the second.
func fullTLSStatus(nsec int) tlsmgr.Status {
	at := func(h int) time.Time { return time.Date(2026, 3, 4, h, 5, 6, nsec, time.UTC) }
	cert := tlsmgr.CertificateInfo{
		Subject: "CN=n1.kms.example.net", SANs: []string{"n1.kms.example.net", "10.0.0.11"},
		Issuer: "CN=minkms CA", Serial: "1a2b", Fingerprint: "00ff",
		NotBefore: at(1), NotAfter: at(2),
	}
	return tlsmgr.Status{
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
}
