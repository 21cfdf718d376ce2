package cluster_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/minkms/minkms/cluster"
)

// TestRecoverLostQuorum: a three-node cluster loses two nodes for good.
// Recover on the survivor alone, with itself as the only member, makes it
// a one-node cluster again: it elects itself, has every write it had, and
// accepts new ones.
func TestRecoverLostQuorum(t *testing.T) {
	rec := &recorder{}
	tc := newTestCluster(t, 3, func(i int, c *cluster.Config) {
		if i == 0 {
			c.Logger = slog.New(rec)
		}
	})
	tc.startAll()
	tc.waitVoters(3)
	n1 := tc.nodes[0]
	var names []string
	for i := range 10 {
		if i == 5 {
			// Part of the state in a snapshot, part in the log only.
			if err := n1.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
		name := fmt.Sprintf("k%d", i)
		// Through n1: Propose returns once n1 has applied the write.
		if err := n1.Propose(ctxT(t), put(name, "v")); err != nil {
			t.Fatalf("propose %s through n1: %v", name, err)
		}
		names = append(names, name)
	}
	for i := range tc.nodes {
		tc.stop(i)
	}

	n1.Store = MustStore(t, n1.Dir)
	cfg := cluster.RecoverConfig{
		NodeID: "n1", PeerAddr: n1.Addr, DataDir: n1.Dir, Store: n1.Store,
		Members: []cluster.Member{MustParseMember(t, "n1="+n1.Addr)},
		Logger:  slog.New(rec),
	}
	res, err := cluster.Recover(cfg)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(res.Old) != 3 || len(res.New) != 1 || !res.Changed() {
		t.Errorf("Recover = %+v, want 3 old members and 1 new", res)
	}
	if !rec.has("Rewriting the raft configuration of this node: the last resort for a cluster that lost its quorum for good; writes that only the lost nodes had are lost") {
		t.Errorf("no warning logged: %q", rec.msgs)
	}

	n1.cfg.BootstrapExpect, n1.cfg.Join = 0, nil
	tc.start(0)
	waitFor(t, 10*time.Second, "n1 to lead", n1.IsLeader)
	ms, err := n1.Members(ctxT(t))
	if err != nil || len(ms) != 1 || ms[0].ID != "n1" || !ms[0].Voter {
		t.Fatalf("members after recovery = %+v, %v; want n1 alone, a voter", ms, err)
	}
	for _, name := range names {
		MustGet(t, n1.Store, name)
	}
	if err := n1.Propose(ctxT(t), put("after", "recovery")); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	MustGet(t, n1.Store, "after")
	if rec.has("The state file is behind the newest raft snapshot; rebuilding it from the snapshot and the log") {
		t.Error("the recovered state is behind its snapshot at start")
	}

	t.Run("AgainChangesNothing", func(t *testing.T) {
		tc.stop(0)
		n1.Store = MustStore(t, n1.Dir)
		cfg.Store = n1.Store
		res, err := cluster.Recover(cfg)
		if err != nil || res.Changed() {
			t.Fatalf("Recover a second time = %+v, %v; want no change", res, err)
		}
		tc.start(0)
		waitFor(t, 10*time.Second, "n1 to lead", n1.IsLeader)
		MustGet(t, n1.Store, "after")
	})
}

// TestRecoverRefusals: Recover changes nothing when the member list is
// malformed or leaves this node out, the data directory is not this
// node's or has no raft state, or the node is running.
func TestRecoverRefusals(t *testing.T) {
	tc := newTestCluster(t, 1, func(i int, c *cluster.Config) {
		c.BootstrapExpect, c.Join, c.Bootstrap = 0, nil, true
	})
	n1 := tc.start(0)
	waitFor(t, 10*time.Second, "n1 to lead", n1.IsLeader)
	if err := n1.Propose(ctxT(t), put("k", "v")); err != nil {
		t.Fatal(err)
	}
	tc.stop(0)
	store := MustStore(t, n1.Dir)
	self := cluster.Member{ID: "n1", PeerAddr: n1.Addr, Voter: true}
	base := cluster.RecoverConfig{NodeID: "n1", PeerAddr: n1.Addr, DataDir: n1.Dir, Store: store,
		Logger: slog.New(slog.DiscardHandler)}

	t.Run("MemberSyntax", func(t *testing.T) {
		for _, s := range []string{"n1", "n1:7374", "n1=", "=n1:7374", "n1=n1", "n1=n1:0", "n1=n1:99999",
			"n1=0.0.0.0:7374", "n 1=n1:7374", "n1=:7374"} {
			if m, err := cluster.ParseMember(s); !errors.Is(err, cluster.ErrRecover) {
				t.Errorf("ParseMember(%q) = %+v, %v; want ErrRecover", s, m, err)
			}
		}
		m, err := cluster.ParseMember("n1=kms-1.example.net:7374")
		if err != nil || m != (cluster.Member{ID: "n1", PeerAddr: "kms-1.example.net:7374", Voter: true}) {
			t.Errorf("ParseMember = %+v, %v", m, err)
		}
	})
	refusals := []struct {
		name    string
		mod     func(c *cluster.RecoverConfig)
		want    error
		message string
	}{
		{"OwnIDMissing", func(c *cluster.RecoverConfig) {
			c.Members = []cluster.Member{{ID: "n2", PeerAddr: "n2:7374", Voter: true}}
		}, cluster.ErrRecover, "this node, n1, is not in the member list"},
		{"OwnAddressWrong", func(c *cluster.RecoverConfig) {
			c.Members = []cluster.Member{{ID: "n1", PeerAddr: "elsewhere:7374", Voter: true}}
		}, cluster.ErrRecover, "member n1 is listed at elsewhere:7374, but its config says advertise_peer " + n1.Addr},
		{"DuplicateID", func(c *cluster.RecoverConfig) {
			c.Members = append(c.Members, cluster.Member{ID: "n1", PeerAddr: "n2:7374", Voter: true})
		}, cluster.ErrRecover, "node id n1 is listed twice"},
		{"DuplicateAddress", func(c *cluster.RecoverConfig) {
			c.Members = append(c.Members, cluster.Member{ID: "n2", PeerAddr: n1.Addr, Voter: true})
		}, cluster.ErrRecover, "members n1 and n2 have the same peer address"},
		{"NoMembers", func(c *cluster.RecoverConfig) { c.Members = nil }, cluster.ErrRecover, "no members"},
		{"OtherNodesDirectory", func(c *cluster.RecoverConfig) {
			c.NodeID = "n9"
			c.Members = []cluster.Member{{ID: "n9", PeerAddr: n1.Addr, Voter: true}}
		}, cluster.ErrRecover, `belongs to node "n1", but the config says node_id "n9"`},
		{"NoRaftState", func(c *cluster.RecoverConfig) { c.DataDir = t.TempDir() }, cluster.ErrRecover, "holds no raft state"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			cfg := base
			cfg.Members = []cluster.Member{self}
			r.mod(&cfg)
			_, err := cluster.Recover(cfg)
			if !errors.Is(err, r.want) || !strings.Contains(err.Error(), r.message) {
				t.Errorf("Recover = %v, want %v saying %q", err, r.want, r.message)
			}
		})
	}
	t.Run("Running", func(t *testing.T) {
		// The running node holds raft.db open, as raft-boltdb does.
		held, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n1.Dir, "raft", "raft.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		cfg := base
		cfg.Members = []cluster.Member{self}
		start := time.Now()
		_, err = cluster.Recover(cfg)
		if !errors.Is(err, cluster.ErrRunning) || !strings.Contains(err.Error(), "the node is running; stop it first") {
			t.Errorf("Recover of a running node = %v, want ErrRunning", err)
		}
		if d := time.Since(start); d > 5*cluster.RecoverLockTimeout {
			t.Errorf("the refusal took %s", d)
		}
	})
	t.Run("NothingChanged", func(t *testing.T) {
		cfg := base
		cfg.Members = []cluster.Member{self}
		res, err := cluster.Recover(cfg)
		if err != nil || res.Changed() || len(res.Old) != 1 || res.Old[0] != self {
			t.Errorf("Recover after the refusals = %+v, %v; want the old configuration of n1 alone, unchanged", res, err)
		}
		MustGet(t, store, "k")
	})
}

func MustParseMember(tb testing.TB, s string) cluster.Member {
	tb.Helper()
	m, err := cluster.ParseMember(s)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
