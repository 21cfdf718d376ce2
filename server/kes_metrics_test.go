package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/minkms/minkms/api"
)

// kesLabelled are the only families KES clients accept with more than one
// series.
var kesLabelled = map[string]bool{
	"kes_http_request_success": true,
	"kes_http_request_error":   true,
	"kes_http_request_failure": true,
}

// TestKESMetrics decodes GET /v1/metrics as KES clients do (kes-go's
// decoder, which MinIO's KMS metrics use): the Prometheus text parser, one
// series per family except the three request counters, KES's names with
// plausible values after some requests. GET /metrics still holds the full
// set.
func TestKESMetrics(t *testing.T) {
	n := MustStartNode(t)
	n.MustOK(t, n.admin, http.MethodPost, "/v1/key/create/kes-metrics-key", nil, nil)
	if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/kes-metrics-missing", nil); r.Status != http.StatusNotFound {
		t.Fatalf("describe = %d, want 404", r.Status)
	}

	r := n.MustDo(t, n.admin, http.MethodGet, "/v1/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/metrics = %d %s", r.Status, r.Body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parsing /v1/metrics: %v\n%s", err, r.Body)
	}
	for name, f := range families {
		if !strings.HasPrefix(name, "kes_") {
			t.Errorf("/v1/metrics holds %s: KES clients know only kes_* families", name)
		}
		if !kesLabelled[name] && len(f.GetMetric()) != 1 {
			t.Errorf("%s has %d series; KES clients accept exactly one", name, len(f.GetMetric()))
		}
	}
	one := func(name string) *dto.Metric {
		t.Helper()
		f, ok := families[name]
		if !ok || len(f.GetMetric()) == 0 {
			t.Fatalf("/v1/metrics lacks %s:\n%s", name, r.Body)
		}
		return f.GetMetric()[0]
	}
	byCode := func(name, code string) float64 {
		for _, m := range families[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	if v := byCode("kes_http_request_success", "200"); v < 1 {
		t.Errorf("kes_http_request_success{code=200} = %v, want ≥ 1", v)
	}
	if v := byCode("kes_http_request_error", "404"); v < 1 {
		t.Errorf("kes_http_request_error{code=404} = %v, want ≥ 1", v)
	}
	if h := one("kes_http_response_time").GetHistogram(); h.GetSampleCount() < 2 || len(h.GetBucket()) != 11 {
		t.Errorf("kes_http_response_time: %d samples, %d buckets; want ≥ 2 and KES's 10 and +Inf", h.GetSampleCount(), len(h.GetBucket()))
	}
	if v := one("kes_http_request_active").GetGauge().GetValue(); v < 1 {
		t.Errorf("kes_http_request_active = %v, want ≥ 1 (this scrape)", v)
	}
	if v := one("kes_log_audit_events").GetCounter().GetValue(); v < 1 {
		t.Errorf("kes_log_audit_events = %v, want ≥ 1 after a key was created", v)
	}
	one("kes_log_error_events")
	for _, name := range []string{"kes_system_up_time", "kes_system_num_cpu", "kes_system_num_cpu_used",
		"kes_system_mem_heap_used", "kes_system_mem_stack_used"} {
		if v := one(name).GetGauge().GetValue(); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if up := one("kes_system_up_time").GetGauge().GetValue(); up > 24*3600 {
		t.Errorf("kes_system_up_time = %v, want seconds since the node started", up)
	}

	full := n.MustDo(t, n.admin, http.MethodGet, "/metrics", nil)
	if full.Status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", full.Status)
	}
	parser = expfmt.NewTextParser(model.LegacyValidation)
	all, err := parser.TextToMetricFamilies(bytes.NewReader(full.Body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	for _, name := range []string{"minkms_http_requests_total", "minkms_http_request_duration_seconds",
		"go_goroutines", "process_start_time_seconds", "kes_http_request_success", "kes_system_up_time"} {
		if _, ok := all[name]; !ok {
			t.Errorf("GET /metrics lacks %s", name)
		}
	}
}

// TestKESStatus: /v1/status decodes into KES's status fields, in KES's
// names and units (uptime in seconds), with true numbers.
func TestKESStatus(t *testing.T) {
	n := MustSharedNode(t)
	r := n.MustDo(t, n.admin, http.MethodGet, "/v1/status", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/status = %d %s", r.Status, r.Body)
	}
	// KES's documented status shape, decoded as `kes status` does.
	var kes struct {
		Version    string `json:"version"`
		OS         string `json:"os"`
		Arch       string `json:"arch"`
		UpTime     uint64 `json:"uptime"` // seconds
		CPUs       int    `json:"num_cpu"`
		UsableCPUs int    `json:"num_cpu_used"`
		HeapAlloc  uint64 `json:"mem_heap_used"`
		StackAlloc uint64 `json:"mem_stack_used"`

		NodeID   string `json:"node_id"`
		Role     string `json:"raft_role"`
		Leader   bool   `json:"leader"`
		LeaderID string `json:"leader_id"`
	}
	if err := json.Unmarshal(r.Body, &kes); err != nil {
		t.Fatalf("decoding %s: %v", r.Body, err)
	}
	if kes.UpTime == 0 || kes.UpTime > 24*3600 {
		t.Errorf("uptime = %d, want seconds since the node started", kes.UpTime)
	}
	if kes.CPUs <= 0 || kes.UsableCPUs <= 0 {
		t.Errorf("num_cpu = %d, num_cpu_used = %d; want > 0", kes.CPUs, kes.UsableCPUs)
	}
	if kes.HeapAlloc == 0 || kes.StackAlloc == 0 {
		t.Errorf("mem_heap_used = %d, mem_stack_used = %d; want > 0", kes.HeapAlloc, kes.StackAlloc)
	}
	if kes.Version == "" || kes.OS == "" || kes.Arch == "" {
		t.Errorf("status = %s", r.Body)
	}
	if kes.NodeID == "" || kes.Role != "leader" || !kes.Leader || kes.LeaderID != kes.NodeID {
		t.Errorf("node %q, role %q, leader %v, leader id %q; want the single node as leader", kes.NodeID, kes.Role, kes.Leader, kes.LeaderID)
	}
}

// TestHexIdentityPaths: the native identity routes take KES's hex form of
// an identity and store and show it as "h1:"; the client of that key gets
// in.
func TestHexIdentityPaths(t *testing.T) {
	n := MustSharedNode(t)
	client, key := n.MustClient(t)
	kes := api.HexIdentity(key.Identity())
	var info api.IdentityInfo
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/identities/"+kes, api.CreateIdentityRequest{Admin: true}, &info)
	if info.Identity != key.Identity() {
		t.Errorf("created %q, want %q", info.Identity, key.Identity())
	}
	n.MustOK(t, n.admin, http.MethodGet, "/v1/enclaves/default/identities/"+kes, nil, &info)
	if info.Identity != key.Identity() {
		t.Errorf("described %q, want %q", info.Identity, key.Identity())
	}
	var self api.SelfResponse
	n.MustOK(t, client, http.MethodGet, "/v1/identity/self/describe", nil, &self)
	if self.Identity != key.Identity() {
		t.Errorf("self = %q, want %q", self.Identity, key.Identity())
	}
	n.MustOK(t, n.admin, http.MethodDelete, "/v1/enclaves/default/identities/"+kes, nil, nil)
}
