package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

const statusAnswer = `{"node":"n1","evaluated_at":"2026-01-02T03:04:05Z","healthy":false,
	"consensus_at_risk":"2026-01-03T04:00:00Z",
	"members":[{"id":"n1","peer_address":"n1:7374","api_address":"n1:7373","voter":true,"role":"leader","leader":true,
		"reachable":true,"last_contact_seconds":0,"applied_index":42,"cert_not_after":"2026-01-03T04:00:00Z",
		"reported":true,"report_age_seconds":1.5,"version":"v1"}],
	"findings":[{"kind":"consensus-at-risk","severity":"critical","nodes":["n2","n3"],"at":"2026-01-03T04:00:00Z",
		"message":"Consensus at risk from 2026-01-03 04:00:00: certificates of n2, n3 expire"}]}`

// TestClusterStatus: the SDK decodes the status and, as for any read, asks
// the next endpoint when the first does not answer.
func TestClusterStatus(t *testing.T) {
	key := MustGenerateAPIKey(t)
	down := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) { writeError(w, api.ErrNoLeader) })
	up := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/cluster/status" || r.URL.RawQuery != "" {
			t.Errorf("request = %s %s, want GET /v1/cluster/status", r.Method, r.URL)
		}
		writeJSON(w, http.StatusOK, statusAnswer)
	})
	c := MustClient(t, key, []*fakeServer{down, up}, down.URL, up.URL)
	got, err := c.ClusterStatus(MustContext(t))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 3, 4, 0, 0, 0, time.UTC)
	want := &api.ClusterStatus{
		Node: "n1", EvaluatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ConsensusAtRisk: at,
		Members: []api.ClusterStatusMember{{
			ID: "n1", PeerAddress: "n1:7374", APIAddress: "n1:7373", Voter: true, Role: "leader", Leader: true,
			Reachable: true, AppliedIndex: 42, CertNotAfter: at, Reported: true, ReportAgeSeconds: 1.5, Version: "v1",
		}},
		Findings: []api.ClusterFinding{{
			Kind: "consensus-at-risk", Severity: api.SeverityCritical, Nodes: []string{"n2", "n3"}, At: at,
			Message: "Consensus at risk from 2026-01-03 04:00:00: certificates of n2, n3 expire",
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status = %+v, want %+v", got, want)
	}
	if down.Hits() != 1 || up.Hits() != 1 {
		t.Errorf("hits = %d, %d; want 1, 1 (a read moves on)", down.Hits(), up.Hits())
	}

	t.Run("OmitsZeroTimes", func(t *testing.T) {
		b, err := json.Marshal(api.ClusterStatus{Members: []api.ClusterStatusMember{{ID: "n1"}}, Findings: []api.ClusterFinding{{Kind: "unreachable"}}})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		member := m["members"].([]any)[0].(map[string]any)
		finding := m["findings"].([]any)[0].(map[string]any)
		if _, ok := m["consensus_at_risk"]; ok {
			t.Errorf("consensus_at_risk present when zero: %s", b)
		}
		if _, ok := member["cert_not_after"]; ok {
			t.Errorf("cert_not_after present when zero: %s", b)
		}
		if _, ok := finding["at"]; ok {
			t.Errorf("at present when zero: %s", b)
		}
	})
}

func TestNodeTLSStatus(t *testing.T) {
	key := MustGenerateAPIKey(t)
	srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/tls/status" || r.URL.RawQuery != "node=n+2" && r.URL.RawQuery != "node=n9" {
			t.Errorf("request = %s, want /v1/tls/status?node=…", r.URL)
		}
		if r.URL.Query().Get("node") == "n9" {
			writeJSON(w, http.StatusNotFound, `{"message":"not a member: n9"}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"pairs":[{"cert":"/c","key":"/k","serial":"1f"}],"ca":{"path":"/ca"}}`)
	})
	c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
	st, err := c.NodeTLSStatus(MustContext(t), "n 2")
	if err != nil || len(st.Pairs) != 1 || st.Pairs[0].Serial != "1f" {
		t.Fatalf("NodeTLSStatus = %+v, %v", st, err)
	}
	_, err = c.NodeTLSStatus(MustContext(t), "n9")
	var e *api.Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("NodeTLSStatus of no member = %v, want a 404 *Error", err)
	}
}
