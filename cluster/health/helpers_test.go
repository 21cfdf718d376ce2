package health_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

// now is the evaluating node's clock in every test.
var now = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

// MustCluster is the Input of a healthy cluster of n voters n1…nN, seen
// from n1, its leader: every member reports one pair expiring in 90 days
// (fingerprint "fp-<id>", no DER), answers its probe with the leader's
// applied index, and is in contact with the leader.
func MustCluster(tb testing.TB, n int) health.Input {
	tb.Helper()
	in := health.Input{
		Now: now, Self: "n1", Leader: "n1",
		Reports:         make(map[string]health.NodeReport),
		ElectionTimeout: 600 * time.Millisecond,
		WarnBefore:      72 * time.Hour,
		ReloadInterval:  5 * time.Minute,
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		in.Members = append(in.Members, health.Member{ID: id, PeerAddr: fmt.Sprintf("10.0.0.%d:7001", i), Voter: true})
		in.Reports[id] = health.NodeReport{
			NodeID: id, PeerAddr: fmt.Sprintf("10.0.0.%d:7001", i), Time: now.Add(-time.Minute),
			Pairs: []health.CertReport{{
				Cert: "/etc/minkms/node.crt", Fingerprint: "fp-" + id,
				NotAfter: now.Add(90 * 24 * time.Hour), EffectiveNotAfter: now.Add(90 * 24 * time.Hour),
			}},
		}
		role := "follower"
		if id == "n1" {
			role = "leader"
		}
		in.Probes = append(in.Probes, health.Probe{
			NodeID: id, Role: role, Leader: "n1", Applied: 1000,
			LastContact: 50 * time.Millisecond, Clock: now, RTT: time.Millisecond,
		})
	}
	return in
}

// setReport changes the report of id.
func setReport(in *health.Input, id string, f func(*health.NodeReport)) {
	r := in.Reports[id]
	r.Pairs = slices.Clone(r.Pairs)
	f(&r)
	in.Reports[id] = r
}

// setProbe changes the probe of id.
func setProbe(in *health.Input, id string, f func(*health.Probe)) {
	in.Probes = slices.Clone(in.Probes)
	for i := range in.Probes {
		if in.Probes[i].NodeID == id {
			f(&in.Probes[i])
		}
	}
}

// setExpiry sets the effective expiry of id's certificate.
func setExpiry(in *health.Input, id string, t time.Time) {
	setReport(in, id, func(r *health.NodeReport) { r.Pairs[0].EffectiveNotAfter = t; r.Pairs[0].NotAfter = t })
}

// ofKind is the findings of a kind, in order.
func ofKind(r health.Result, k health.Kind) []health.Finding {
	var out []health.Finding
	for _, f := range r.Findings {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

// want is a finding as a test expects it; At is checked only when set.
type want struct {
	Severity health.Severity
	Nodes    []string
	Message  string
	At       time.Time
}

// checkFindings evaluates in and compares its findings of kind k.
func checkFindings(t *testing.T, in health.Input, k health.Kind, wants []want) health.Result {
	t.Helper()
	res := health.Evaluate(in)
	got := ofKind(res, k)
	if len(got) != len(wants) {
		t.Fatalf("%s findings: got %d, want %d: %+v", k, len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Severity != w.Severity || !slices.Equal(g.Nodes, w.Nodes) || g.Message != w.Message {
			t.Errorf("%s finding %d:\n got %s %v %q\nwant %s %v %q", k, i, g.Severity, g.Nodes, g.Message, w.Severity, w.Nodes, w.Message)
		}
		if !w.At.IsZero() && !g.At.Equal(w.At) {
			t.Errorf("%s finding %d: At %v, want %v", k, i, g.At, w.At)
		}
	}
	return res
}
