package health_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

// messyFiveNodes is a five-node cluster with something of every kind wrong.
func messyFiveNodes(tb testing.TB) health.Input {
	in := MustCluster(tb, 5)
	setExpiry(&in, "n2", now.Add(30*time.Hour))
	setExpiry(&in, "n3", now.Add(-time.Hour))
	setExpiry(&in, "n4", now.Add(40*time.Hour))
	setReport(&in, "n5", func(r *health.NodeReport) { r.Pairs[0].LastError = "expired"; r.Time = now.Add(-time.Hour) })
	setProbe(&in, "n4", func(p *health.Probe) { p.Clock = now.Add(10 * time.Second) })
	setProbe(&in, "n5", func(p *health.Probe) { p.Err = "refused" })
	in.Observations = []health.Observation{
		{Observer: "n1", Peer: "n2", DialedHost: "n2.example.net", FailedAt: now, Failure: "name-mismatch"},
		{Observer: "n2", Peer: "n4", Fingerprint: "other", At: now},
		{Observer: "n3", Peer: "n1", FailedAt: now, Failure: "unknown-ca"},
	}
	return in
}

func TestEvaluateOrder(t *testing.T) {
	res := health.Evaluate(messyFiveNodes(t))
	var got []string
	for _, f := range res.Findings {
		got = append(got, fmt.Sprintf("%s %s %v", f.Severity, f.Kind, f.Nodes))
	}
	want := []string{
		"critical consensus-at-risk [n2 n3 n4]",
		"warning ca-mismatch [n1 n3]",
		"warning cert-expired [n3]",
		"warning cert-expires-soon [n2]",
		"warning cert-expires-soon [n4]",
		"warning clock-skew [n4]",
		"warning observed-differs [n4]",
		"warning reload-failing [n5]",
		"warning san-mismatch [n2]",
		"warning stale-report [n5]",
		"warning unreachable [n5]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
	if res.Healthy {
		t.Error("healthy")
	}
	if !res.ConsensusAtRisk.Equal(now.Add(40 * time.Hour)) {
		t.Errorf("ConsensusAtRisk = %v", res.ConsensusAtRisk)
	}
	keys := make(map[string]bool)
	for _, f := range res.Findings {
		if keys[f.Key()] {
			t.Errorf("two findings with key %q", f.Key())
		}
		keys[f.Key()] = true
	}
}

// TestEvaluateDeterministic evaluates the same facts in other orders.
func TestEvaluateDeterministic(t *testing.T) {
	in := messyFiveNodes(t)
	want := health.Evaluate(in)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		shuffled := in
		shuffled.Members = slices.Clone(in.Members)
		shuffled.Probes = slices.Clone(in.Probes)
		shuffled.Observations = slices.Clone(in.Observations)
		rng.Shuffle(len(shuffled.Members), func(i, j int) { shuffled.Members[i], shuffled.Members[j] = shuffled.Members[j], shuffled.Members[i] })
		rng.Shuffle(len(shuffled.Probes), func(i, j int) { shuffled.Probes[i], shuffled.Probes[j] = shuffled.Probes[j], shuffled.Probes[i] })
		rng.Shuffle(len(shuffled.Observations), func(i, j int) {
			shuffled.Observations[i], shuffled.Observations[j] = shuffled.Observations[j], shuffled.Observations[i]
		})
		if got := health.Evaluate(shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// The issue's case: the certificates of two of three voters expire within
// warn_before.
func ExampleEvaluate() {
	now := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	in := health.Input{
		Now: now, Self: "n1", Leader: "n1", WarnBefore: 72 * time.Hour,
		Reports: make(map[string]health.NodeReport),
	}
	expiry := map[string]time.Time{"n1": now.Add(90 * 24 * time.Hour), "n2": now.Add(30 * time.Hour), "n3": now.Add(48 * time.Hour)}
	for _, id := range []string{"n1", "n2", "n3"} {
		in.Members = append(in.Members, health.Member{ID: id, Voter: true})
		in.Reports[id] = health.NodeReport{NodeID: id, Time: now, Pairs: []health.CertReport{{EffectiveNotAfter: expiry[id]}}}
		in.Probes = append(in.Probes, health.Probe{NodeID: id, Applied: 7})
	}
	res := health.Evaluate(in)
	for _, f := range res.Findings {
		fmt.Printf("%s: %s\n", f.Severity, f.Message)
	}
	fmt.Println("healthy:", res.Healthy)
	// Output:
	// critical: Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire
	// warning: Certificate of node n2 expires in 30h
	// warning: Certificate of node n3 expires in 48h
	// healthy: false
}
