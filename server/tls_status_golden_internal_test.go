package server

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestTLSStatusGolden freezes the JSON shape of GET /v1/tls/status: a fully
// populated status, answered as the route answers it, must read exactly as
// testdata/tls_status.golden.json. Scripts read pairs[].cert, pairs[].key
// and the rest by these names: a change here breaks them. Run with -update
// only for a change that is meant, and say so in the changelog.
func TestTLSStatusGolden(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 4, h, 5, 6, 0, time.UTC) }
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
	mustSetEveryField(t, reflect.ValueOf(status), "tlsmgr.Status")

	rec := httptest.NewRecorder()
	writeJSON(rec, 200, apiTLSStatus(status))
	var got bytes.Buffer
	if err := json.Indent(&got, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tls_status.golden.json")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTLSStatusGolden -update to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("GET /v1/tls/status answers another shape than %s:\n%s\nwant:\n%s", golden, got.Bytes(), want)
	}
}
