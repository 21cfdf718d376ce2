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
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestTLSStatusGolden freezes the JSON shape of GET /v1/tls/status: a fully
// populated status, answered as the route answers it, must read exactly as
// testdata/tls_status.golden.json. Scripts read pairs[].cert, pairs[].key
// and the rest by these names: a change here breaks them. Run with -update
// only for a change that is meant, and say so in the changelog.
func TestTLSStatusGolden(t *testing.T) {
	status := fullTLSStatus(0)
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
