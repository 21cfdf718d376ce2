package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/storage/kv"
)

// reportSource stands in for the server's report of one node: a
// certificate whose fingerprint the test changes, and a trigger.
type reportSource struct {
	mu          sync.Mutex
	fingerprint string
	trigger     chan struct{}
}

func (r *reportSource) report() health.NodeReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return health.NodeReport{
		NodeID:         "ignored", // the node says who it is
		Version:        "v-test",
		ReloadInterval: time.Hour,
		WarnBefore:     48 * time.Hour,
		Pairs: []health.CertReport{{
			Cert: "node.crt", Key: "node.key", Fingerprint: r.fingerprint,
			NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			Chain:    [][]byte{[]byte("leaf " + r.fingerprint), []byte("intermediate")},
		}},
		CABundle: [][]byte{[]byte("root")},
	}
}

func (r *reportSource) rotate(fingerprint string) {
	r.mu.Lock()
	r.fingerprint = fingerprint
	r.mu.Unlock()
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// newReportingCluster is a cluster of n nodes with a report source each;
// node i says it saw node i+1 at that node's address.
func newReportingCluster(t *testing.T, n int) (*testCluster, []*reportSource) {
	srcs := make([]*reportSource, n)
	tc := newTestCluster(t, n, func(i int, c *cluster.Config) {
		srcs[i] = &reportSource{fingerprint: fmt.Sprintf("fp-n%d-1", i+1), trigger: make(chan struct{}, 1)}
		c.Report = srcs[i].report
		c.ReportTrigger = srcs[i].trigger
		next := fmt.Sprintf("n%d:7374", (i+1)%n+1)
		c.Observations = func() []health.Observation {
			return []health.Observation{{Peer: next, Fingerprint: "seen", At: time.Unix(1, 0)}}
		}
	})
	return tc, srcs
}

// waitReports waits until every running node holds every node's report
// with the fingerprint its source gives now.
func waitReports(t *testing.T, tc *testCluster, srcs []*reportSource) {
	t.Helper()
	waitFor(t, 10*time.Second, "every node's report on every node", func() bool {
		for _, n := range tc.nodes {
			if n.Node == nil || n.Store == nil {
				continue
			}
			reports, err := n.Reports()
			if err != nil || len(reports) != len(tc.nodes) {
				return false
			}
			for i, o := range tc.nodes {
				r := reports[o.ID]
				if len(r.Pairs) != 1 || r.Pairs[0].Fingerprint != srcs[i].report().Pairs[0].Fingerprint {
					return false
				}
			}
		}
		return true
	})
}

func TestNodeReports(t *testing.T) {
	tc, srcs := newReportingCluster(t, 3)
	tc.startAll()
	tc.waitVoters(3)
	waitReports(t, tc, srcs)

	t.Run("Content", func(t *testing.T) {
		r, err := tc.nodes[0].Report("n2")
		if err != nil {
			t.Fatal(err)
		}
		want := srcs[1].report()
		want.NodeID, want.APIAddr, want.PeerAddr = "n2", "n2:7373", "n2:7374"
		if time.Since(r.Time) > time.Minute || r.Time.After(time.Now()) {
			t.Errorf("report time = %s, want about now", r.Time)
		}
		r.Time = time.Time{}
		if fmt.Sprint(r) != fmt.Sprint(want) {
			t.Errorf("report of n2 on n1 =\n%+v\nwant\n%+v", r, want)
		}
		ms, err := tc.nodes[0].Members(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.APIAddr != m.ID+":7373" {
				t.Errorf("member %s lists API address %q", m.ID, m.APIAddr)
			}
		}
		for _, n := range tc.nodes {
			if err := n.Reported(); err != nil {
				t.Errorf("%s: Reported() = %v", n.ID, err)
			}
		}
	})
	t.Run("NotRewrittenWhenUnchanged", func(t *testing.T) {
		l := tc.leader()
		before := l.Stats().LastIndex
		time.Sleep(2500 * time.Millisecond) // more than two rounds of upkeep
		if after := l.Stats().LastIndex; after != before {
			t.Errorf("the raft log grew from %d to %d with nothing changed: reports are rewritten every round", before, after)
		}
	})
	t.Run("Rotation", func(t *testing.T) {
		srcs[1].rotate("fp-n2-2")
		waitReports(t, tc, srcs)
	})
	t.Run("SurviveRestart", func(t *testing.T) {
		tc.stop(2)
		n3 := tc.start(2)
		reports, err := n3.Reports()
		if err != nil || len(reports) != 3 || reports["n2"].Pairs[0].Fingerprint != "fp-n2-2" {
			t.Errorf("reports on n3 after its restart = %+v, %v", reports, err)
		}
		tc.waitVoters(3)
		waitReports(t, tc, srcs)
	})
}

// TestReportOfAnotherNodeRefused: the leader refuses a report forwarded by
// another node than the one it is about, in either command type.
func TestReportOfAnotherNodeRefused(t *testing.T) {
	tc, srcs := newReportingCluster(t, 3)
	tc.startAll()
	tc.waitVoters(3)
	waitReports(t, tc, srcs)
	l := tc.leader()
	f := tc.followers()[0]
	other := tc.followers()[1]
	ep := &endpoint{net: tc.net, self: peernet.Hello{NodeID: f.ID, PeerAddr: f.Addr}}
	forward := func(c cluster.Command) error {
		cmd, err := cluster.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ep.Call(ctxT(t), l.Addr, "raft.apply", map[string][]byte{"command": cmd}, nil)
		return err
	}
	seal := func(id string) []byte {
		v, _ := json.Marshal(map[string]string{"node_id": id, "api_addr": "evil:1"})
		sealed, err := f.Store.Seal("cluster/nodes", id, v)
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	refused := func(t *testing.T, err error) {
		t.Helper()
		var re *peernet.RemoteError
		if !errors.As(err, &re) || re.Code != "refused" {
			t.Fatalf("forwarded report of %s by %s = %v, want refused", other.ID, f.ID, err)
		}
	}
	t.Run("ReportCommand", func(t *testing.T) {
		refused(t, forward(cluster.Command{Type: cluster.CommandNodeReport, Report: cluster.SealedReport{NodeID: other.ID, Value: seal(other.ID)}}))
	})
	t.Run("Change", func(t *testing.T) {
		refused(t, forward(cluster.Command{Type: cluster.CommandChange, Change: kv.Change{
			Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "cluster/nodes", Name: other.ID, Value: seal(other.ID)}},
		}}))
		refused(t, forward(cluster.Command{Type: cluster.CommandChange, Change: kv.Change{
			Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "cluster/nodes", Name: other.ID}},
		}}))
	})
	t.Run("Own", func(t *testing.T) {
		if err := forward(cluster.Command{Type: cluster.CommandNodeReport, Report: cluster.SealedReport{NodeID: f.ID, Value: seal(f.ID)}}); err != nil {
			t.Errorf("forwarded own report = %v", err)
		}
	})
	if r, err := l.Report(other.ID); err != nil || r.APIAddr != other.ID+":7373" {
		t.Errorf("the report of %s on the leader = %+v, %v; want its own", other.ID, r, err)
	}
}

func TestHealthInput(t *testing.T) {
	tc, srcs := newReportingCluster(t, 3)
	tc.startAll()
	tc.waitVoters(3)
	waitReports(t, tc, srcs)
	l := tc.leader()
	f := tc.followers()[0]

	in := f.HealthInput(ctxT(t))
	if in.Self != f.ID || in.Leader != l.ID {
		t.Errorf("Self, Leader = %s, %s; want %s, %s", in.Self, in.Leader, f.ID, l.ID)
	}
	if time.Since(in.Now) > 5*time.Second {
		t.Errorf("Now = %s", in.Now)
	}
	if in.ElectionTimeout != 200*time.Millisecond || in.WarnBefore != 48*time.Hour || in.ReloadInterval != time.Hour {
		t.Errorf("ElectionTimeout, WarnBefore, ReloadInterval = %s, %s, %s", in.ElectionTimeout, in.WarnBefore, in.ReloadInterval)
	}
	want := []health.Member{{ID: "n1", PeerAddr: "n1:7374", Voter: true}, {ID: "n2", PeerAddr: "n2:7374", Voter: true}, {ID: "n3", PeerAddr: "n3:7374", Voter: true}}
	slices.SortFunc(in.Members, func(a, b health.Member) int { return strings.Compare(a.ID, b.ID) })
	if fmt.Sprint(in.Members) != fmt.Sprint(want) {
		t.Errorf("Members = %+v, want %+v", in.Members, want)
	}
	if len(in.Reports) != 3 || in.Reports["n3"].Pairs[0].Fingerprint != "fp-n3-1" {
		t.Errorf("Reports = %+v", in.Reports)
	}
	if len(in.Probes) != 3 {
		t.Fatalf("Probes = %+v, want 3", in.Probes)
	}
	for _, p := range in.Probes {
		wantRole := "follower"
		if p.NodeID == l.ID {
			wantRole = "leader"
		}
		switch {
		case p.Err != "":
			t.Errorf("probe of %s failed: %s", p.NodeID, p.Err)
		case p.Role != wantRole || p.Leader != l.ID || p.Applied == 0:
			t.Errorf("probe of %s = %+v", p.NodeID, p)
		case p.Clock.Sub(in.Now).Abs() > 5*time.Second || p.RTT <= 0 || p.RTT > 2*time.Second:
			t.Errorf("probe of %s: clock %s (now %s), RTT %s", p.NodeID, p.Clock, in.Now, p.RTT)
		case wantRole == "leader" && p.LastContact != 0, wantRole == "follower" && p.LastContact > 5*time.Second:
			t.Errorf("probe of %s: last contact %s", p.NodeID, p.LastContact)
		}
	}
	// Every node's observations, their peers named by id.
	wantObs := map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}
	if len(in.Observations) != 3 {
		t.Errorf("Observations = %+v, want one of each node", in.Observations)
	}
	for _, o := range in.Observations {
		if wantObs[o.Observer] != o.Peer || o.Fingerprint != "seen" {
			t.Errorf("observation %+v", o)
		}
	}

	t.Run("StoppedMember", func(t *testing.T) {
		down := tc.nodes[2]
		if down == f {
			down = tc.nodes[1]
		}
		tc.stop(slices.Index(tc.nodes, down))
		start := time.Now()
		in := f.HealthInput(ctxT(t))
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("HealthInput with a member down took %s", d)
		}
		for _, p := range in.Probes {
			if (p.NodeID == down.ID) != (p.Err != "") {
				t.Errorf("probe of %s with %s stopped: %+v", p.NodeID, down.ID, p)
			}
		}
		for _, o := range in.Observations {
			if o.Observer == down.ID {
				t.Errorf("observations of the stopped %s: %+v", down.ID, o)
			}
		}
	})
}

// TestHealth: Health evaluates what HealthInput gathers; a stopped member
// is found unreachable and the cluster unhealthy.
func TestHealth(t *testing.T) {
	tc, srcs := newReportingCluster(t, 3)
	tc.startAll()
	tc.waitVoters(3)
	waitReports(t, tc, srcs)
	f := tc.followers()[0]
	unreachable := func(r health.Result) []string {
		var ids []string
		for _, fd := range r.Findings {
			if fd.Kind == health.Unreachable {
				ids = append(ids, fd.Nodes...)
			}
		}
		return ids
	}
	if r := f.Health(ctxT(t)); len(unreachable(r)) != 0 {
		t.Errorf("Health of a running cluster found %v unreachable: %+v", unreachable(r), r.Findings)
	}
	down := tc.followers()[1]
	if down == f {
		down = tc.followers()[0]
	}
	tc.stop(slices.Index(tc.nodes, down))
	r := f.Health(ctxT(t))
	if got := unreachable(r); len(got) != 1 || got[0] != down.ID || r.Healthy {
		t.Errorf("Health with %s stopped: healthy %v, unreachable %v; findings %+v", down.ID, r.Healthy, got, r.Findings)
	}
}
