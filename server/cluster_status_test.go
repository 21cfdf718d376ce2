package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestPrometheusRoute: GET /metrics is the full exposition, for cluster
// admins and identities whose policy allows metrics:read; /v1/metrics
// serves KES's families.
func TestPrometheusRoute(t *testing.T) {
	n := MustSharedNode(t)
	// The shared node outlives a run (-count): names of this run's own.
	scraperPolicy, keysPolicy := uniqueName("prometheus-scraper"), uniqueName("metrics-keys-only")
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/policies/"+scraperPolicy,
		api.Policy{Allow: map[string][]string{"metrics:read": {"*"}}}, nil)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/policies/"+keysPolicy,
		api.Policy{Allow: map[string][]string{"key:*": {"*"}}}, nil)
	scraper, scraperKey := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+scraperKey.Identity(),
		api.CreateIdentityRequest{Policy: scraperPolicy}, nil)
	app, appKey := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+appKey.Identity(),
		api.CreateIdentityRequest{Policy: keysPolicy}, nil)
	enclaveAdmin, adminKey := n.MustClient(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+adminKey.Identity(),
		api.CreateIdentityRequest{Admin: true}, nil)
	stranger, _ := n.MustClient(t)

	for _, tt := range []struct {
		name   string
		client *http.Client
		status int
	}{
		{"ClusterAdmin", n.admin, 200},
		{"PolicyAllows", scraper, 200},
		{"KeyPolicy", app, 403},
		{"EnclaveAdmin", enclaveAdmin, 403},
		{"Unknown", stranger, 403},
		{"NoCertificate", n.anon, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := n.MustDo(t, tt.client, http.MethodGet, "/metrics", nil)
			if r.Status != tt.status {
				t.Fatalf("GET /metrics = %d %s, want %d", r.Status, r.Body, tt.status)
			}
			if tt.status == 200 {
				for _, want := range []string{"# TYPE minkms_http_requests_total counter", "minkms_tls_cert_not_after_timestamp_seconds", "go_goroutines"} {
					if !strings.Contains(string(r.Body), want) {
						t.Errorf("GET /metrics lacks %q", want)
					}
				}
			}
		})
	}
	t.Run("V1MetricsUnchanged", func(t *testing.T) {
		if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/metrics", nil); r.Status != 200 || !strings.Contains(string(r.Body), "kes_http_request_success") {
			t.Errorf("GET /v1/metrics = %d", r.Status)
		}
	})
}

// TestTLSStatusOfNodeRoute: on a running node, ?node= names this node or
// another member, through the cluster's own Ask.
func TestTLSStatusOfNodeRoute(t *testing.T) {
	n := MustSharedNode(t)
	var st api.TLSStatus
	n.MustOK(t, n.admin, http.MethodGet, "/v1/tls/status?node="+n.cfg.Cluster.NodeID, nil, &st)
	if len(st.Pairs) != 1 || st.Pairs[0].Cert != n.cfg.TLS.Certs[0].Cert {
		t.Errorf("TLS status of the node by its id = %+v", st.Pairs)
	}
	if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/tls/status?node=no-such-node", nil); r.Status != 404 || r.Message() != "not a member: no-such-node" {
		t.Errorf("TLS status of no member = %d %q, want 404", r.Status, r.Message())
	}
}
