package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage/kv"
)

// TestBootstrapExpect starts three nodes at once with bootstrap_expect: 3:
// they find each other and form one cluster of three voters, with one
// cluster id that every node learns.
func TestBootstrapExpect(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	leaders := 0
	for _, n := range tc.nodes {
		if n.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders, want 1", leaders)
	}
	waitFor(t, 10*time.Second, "one cluster id on every node", func() bool {
		id := tc.nodes[0].ClusterID()
		for _, n := range tc.nodes {
			if n.ClusterID() == "" || n.ClusterID() != id {
				return false
			}
		}
		return true
	})
	for _, n := range tc.nodes {
		if f := n.Formation(); f != "" {
			t.Errorf("%s still forming: %q", n.ID, f)
		}
	}
}

// TestBootstrapExpectWaits: with one node of three missing, nobody forms a
// cluster, and formation says what it waits for.
func TestBootstrapExpectWaits(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.start(0)
	tc.start(1)
	waitFor(t, 5*time.Second, "a formation message", func() bool {
		return strings.Contains(tc.nodes[0].Formation(), "2 of 3 nodes known")
	})
	if id, _ := tc.nodes[0].Leader(); id != "" {
		t.Fatalf("a leader (%s) with two of three expected nodes", id)
	}
	tc.start(2)
	tc.waitVoters(3)
}

func TestWriteThroughFollower(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	for i, f := range tc.followers() {
		name := fmt.Sprintf("via-%s", f.ID)
		if err := f.Propose(ctxT(t), put(name, "v")); err != nil {
			t.Fatalf("Propose on follower %s: %v", f.ID, err)
		}
		// Read-your-writes on the follower: no wait.
		if _, err := f.Store.Get(keysBucket, name); err != nil {
			t.Errorf("follower %s does not see its own write at once: %v", f.ID, err)
		}
		// A failed precondition keeps its type across the forward.
		err := f.Propose(ctxT(t), put(name, "again"))
		var ce *kv.ConditionError
		if !errors.As(err, &ce) || ce.Index != 0 {
			t.Errorf("duplicate create through follower %d = %v, want *kv.ConditionError{0}", i, err)
		}
	}
}

// TestSyncSeesEveryWrite: after Sync, a follower has applied every write
// acknowledged anywhere before it.
func TestSyncSeesEveryWrite(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	l, fs := tc.leader(), tc.followers()
	for i := range 20 {
		MustPropose(t, l.Node, put(fmt.Sprintf("k%d", i), "v"))
		for _, f := range fs {
			if err := f.Sync(ctxT(t)); err != nil {
				t.Fatalf("Sync on %s: %v", f.ID, err)
			}
			if _, err := f.Store.Get(keysBucket, fmt.Sprintf("k%d", i)); err != nil {
				t.Fatalf("after Sync, %s misses k%d: %v", f.ID, i, err)
			}
		}
	}
}

// TestConcurrentSyncShareRounds: many concurrent Syncs succeed.
func TestConcurrentSyncShareRounds(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	f := tc.followers()[0]
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() { errs <- f.Sync(ctxT(t)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailover(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	old := tc.leader()
	MustPropose(t, old.Node, put("before", "v"))
	idx := -1
	for i, n := range tc.nodes {
		if n == old {
			idx = i
		}
	}
	start := time.Now()
	tc.stop(idx)
	l := tc.leader()
	t.Logf("new leader %s after %s", l.ID, time.Since(start))
	MustPropose(t, l.Node, put("after", "v"))
	for _, f := range tc.followers() {
		if err := f.Sync(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"before", "after"} {
			if _, err := f.Store.Get(keysBucket, k); err != nil {
				t.Errorf("%s misses %s: %v", f.ID, k, err)
			}
		}
	}
	// The old leader comes back as a follower and catches up.
	tc.start(idx)
	waitFor(t, 10*time.Second, "the old leader to catch up", func() bool {
		_, err := old.Store.Get(keysBucket, "after")
		return err == nil
	})
}

// TestJoinAndPromote grows a bootstrapped node: one node joins through
// cluster.join, one is added with AddNode; both start as non-voters and
// are promoted once caught up.
func TestJoinAndPromote(t *testing.T) {
	tc := newTestCluster(t, 3, func(i int, c *cluster.Config) {
		c.BootstrapExpect = 0
		c.Join = nil
		switch i {
		case 0:
			c.Bootstrap = true
		case 1:
			c.Join = []string{"n1:7374"}
		}
	})
	tc.start(0)
	tc.waitVoters(1)
	MustPropose(t, tc.nodes[0].Node, put("early", "v"))
	tc.start(1)
	tc.waitVoters(2)
	tc.start(2)
	waitFor(t, 5*time.Second, "n3 waiting to be added", func() bool {
		return strings.Contains(tc.nodes[2].Formation(), "waiting to be added")
	})
	// Ask a follower: the leader does the work.
	m, err := tc.nodes[1].AddNode(ctxT(t), "n3:7374")
	if err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	if m.ID != "n3" {
		t.Errorf("AddNode = %+v", m)
	}
	tc.waitVoters(3)
	waitFor(t, 10*time.Second, "n3 to hold the early write", func() bool {
		_, err := tc.nodes[2].Store.Get(keysBucket, "early")
		return err == nil
	})
	t.Run("AddAgainRefused", func(t *testing.T) {
		if _, err := tc.nodes[0].AddNode(ctxT(t), "n3:7374"); !errors.Is(err, cluster.ErrAlreadyMember) {
			t.Errorf("AddNode of a member at its address = %v, want ErrAlreadyMember", err)
		}
	})
	t.Run("RemoveAndMembers", func(t *testing.T) {
		if err := tc.nodes[2].RemoveNode(ctxT(t), "n2"); err != nil {
			t.Fatalf("RemoveNode: %v", err)
		}
		tc.waitVoters(2)
		if err := tc.nodes[0].RemoveNode(ctxT(t), "n9"); !errors.Is(err, cluster.ErrNotMember) {
			t.Errorf("RemoveNode(n9) = %v, want ErrNotMember", err)
		}
		ms, err := tc.leader().Members(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == "n2" {
				t.Errorf("n2 still listed: %+v", ms)
			}
		}
	})
}

// TestAddNodeRefusals: the leader checks what a node says of itself.
func TestAddNodeRefusals(t *testing.T) {
	tc := newTestCluster(t, 3, func(i int, c *cluster.Config) {
		c.BootstrapExpect = 0
		c.Join = nil
		c.Bootstrap = i == 0
		if i == 1 {
			c.AdminsDigest = "other admins"
		}
		if i == 2 {
			c.NodeID = "n1" // a duplicate id at another address
		}
	})
	tc.startAll()
	tc.waitVoters(1)
	if _, err := tc.nodes[0].AddNode(ctxT(t), "n2:7374"); !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), "admins") {
		t.Errorf("AddNode with other admins = %v, want ErrRefused naming the admins", err)
	}
	if _, err := tc.nodes[0].AddNode(ctxT(t), "n3:7374"); !errors.Is(err, cluster.ErrAlreadyMember) {
		t.Errorf("AddNode of a duplicate id = %v, want ErrAlreadyMember", err)
	}
	if _, err := tc.nodes[0].AddNode(ctxT(t), "nowhere:7374"); !errors.Is(err, cluster.ErrRefused) {
		t.Errorf("AddNode of an unreachable node = %v, want ErrRefused", err)
	}
	tc.waitVoters(1)
}

// TestStaleFollower: a follower cut off from the leader for longer than
// MaxStale says so, and again serves once it hears from a leader.
func TestStaleFollower(t *testing.T) {
	tc := newTestCluster(t, 3, func(_ int, c *cluster.Config) { c.MaxStale = 500 * time.Millisecond })
	tc.startAll()
	tc.waitVoters(3)
	f := tc.followers()[0]
	if err := f.Fresh(); err != nil {
		t.Fatalf("Fresh on a connected follower = %v", err)
	}
	tc.net.isolate(f.Addr, true)
	waitFor(t, 5*time.Second, "the follower to report it is stale", func() bool {
		return errors.Is(f.Fresh(), cluster.ErrStale) || errors.Is(f.Fresh(), cluster.ErrNoLeader)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := f.Propose(ctx, put("cut-off", "v")); !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, cluster.ErrOutcomeUnknown) {
		t.Errorf("Propose on a cut-off node = %v", err)
	}
	tc.net.isolate(f.Addr, false)
	waitFor(t, 10*time.Second, "the follower to be fresh again", func() bool { return f.Fresh() == nil })
}

// TestStateAheadOfLogRefused: a state file whose applied index is beyond
// the raft log (the log was lost) is refused at start, before anything is
// written, instead of skipping every new write as "applied".
func TestStateAheadOfLogRefused(t *testing.T) {
	tc := newTestCluster(t, 1, func(_ int, c *cluster.Config) { c.BootstrapExpect = 0; c.Join = nil; c.Bootstrap = true })
	tn := tc.start(0)
	tc.waitVoters(1)
	MustPropose(t, tn.Node, put("k", "v"))
	tc.stop(0)
	if err := os.RemoveAll(filepath.Join(tn.Dir, "raft")); err != nil {
		t.Fatal(err)
	}
	tn.Store = MustStore(t, tn.Dir)
	cfg := tn.cfg
	cfg.Store = tn.Store
	cfg.Transport = tc.net.transport(tn.Addr)
	_, err := cluster.Open(cfg)
	if !errors.Is(err, cluster.ErrState) || !strings.Contains(err.Error(), "raft log was lost") {
		t.Fatalf("Open with a lost raft log = %v, want ErrState", err)
	}
}

// TestNodeIDChangeRefused: a data directory keeps its node id.
func TestNodeIDChangeRefused(t *testing.T) {
	tc := newTestCluster(t, 1, func(_ int, c *cluster.Config) { c.BootstrapExpect = 0; c.Join = nil; c.Bootstrap = true })
	tn := tc.start(0)
	tc.waitVoters(1)
	tc.stop(0)
	tn.Store = MustStore(t, tn.Dir)
	cfg := tn.cfg
	cfg.NodeID = "other"
	cfg.Store = tn.Store
	cfg.Transport = tc.net.transport(tn.Addr)
	if _, err := cluster.Open(cfg); !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), `belongs to node "n1"`) {
		t.Fatalf("Open with another id = %v", err)
	}
}

// TestAskAll: a method registered on every node answers Ask and AskAll
// from any member, this node included; a stopped member gets an error
// within the deadline while the others answer.
func TestAskAll(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.startAll()
	tc.waitVoters(3)
	for _, n := range tc.nodes {
		id := n.ID
		n.Handle("test.whoami", func(_ context.Context, from string, req json.RawMessage) (any, error) {
			return map[string]string{"me": id, "from": from, "req": string(req)}, nil
		})
	}
	asker := tc.nodes[0]
	var got map[string]string
	if err := asker.Ask(ctxT(t), "n2", "test.whoami", "hi", &got); err != nil {
		t.Fatal(err)
	}
	if got["me"] != "n2" || got["from"] != "n1" || got["req"] != `"hi"` {
		t.Errorf("Ask(n2) = %v", got)
	}
	if err := asker.Ask(ctxT(t), "n9", "test.whoami", nil, nil); !errors.Is(err, cluster.ErrNotMember) {
		t.Errorf("Ask(n9) = %v, want ErrNotMember", err)
	}
	answers := asker.AskAll(ctxT(t), "test.whoami", nil, time.Second)
	if len(answers) != 3 {
		t.Fatalf("AskAll = %d answers, want 3", len(answers))
	}
	for _, a := range answers {
		var r map[string]string
		if a.Err != nil || json.Unmarshal(a.Result, &r) != nil || r["me"] != a.NodeID {
			t.Errorf("answer of %s = %s, %v", a.NodeID, a.Result, a.Err)
		}
	}
	// n3 goes away: its answer is an error, the others still answer.
	tc.net.isolate(tc.nodes[2].Addr, true)
	start := time.Now()
	answers = asker.AskAll(ctxT(t), "test.whoami", nil, 500*time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("AskAll with a node down took %s", d)
	}
	for _, a := range answers {
		if (a.NodeID == "n3") != (a.Err != nil) {
			t.Errorf("answer of %s: err %v", a.NodeID, a.Err)
		}
	}
}
