package server_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// TestPProf: /debug/pprof/* does not exist without debug.pprof; with it,
// cluster admins get the profiles and everyone else 403.
func TestPProf(t *testing.T) {
	off := MustSharedNode(t)
	if resp := off.MustDo(t, off.admin, http.MethodGet, "/debug/pprof/", nil); resp.Status != http.StatusNotFound {
		t.Errorf("without debug.pprof: GET /debug/pprof/ as a cluster admin = %d, want 404", resp.Status)
	}

	n, err := startNodeWith(func(c *server.Config) { c.Debug.PProf = true })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(); os.RemoveAll(n.info.DataDir) })

	enclaveAdmin, key := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+key.Identity(), api.CreateIdentityRequest{Admin: true}, nil)
	stranger, _ := n.MustClient(t)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1",
		"/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=0.1"} {
		resp := n.MustDo(t, n.admin, http.MethodGet, path, nil)
		if resp.Status != http.StatusOK || len(resp.Body) == 0 {
			t.Errorf("GET %s as a cluster admin = %d (%d bytes), want 200 with a body", path, resp.Status, len(resp.Body))
		}
		for who, c := range map[string]*http.Client{"an enclave admin": enclaveAdmin, "an unknown identity": stranger} {
			if resp := n.MustDo(t, c, http.MethodGet, path, nil); resp.Status != http.StatusForbidden {
				t.Errorf("GET %s as %s = %d %q, want 403", path, who, resp.Status, resp.Message())
			}
		}
		if resp := n.MustDo(t, n.anon, http.MethodGet, path, nil); resp.Status/100 != 4 || resp.Status == http.StatusNotFound {
			t.Errorf("GET %s without a certificate = %d, want a refusal", path, resp.Status)
		}
	}
	if resp := n.MustDo(t, n.admin, http.MethodGet, "/debug/pprof/", nil); !strings.Contains(string(resp.Body), "goroutine") {
		t.Errorf("the index lists no goroutine profile: %.200s", resp.Body)
	}
}
