package peernet_test

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/peernet"
)

// counter is the smallest FSM: it counts applied entries.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) Apply(*raft.Log) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *counter) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not supported") }
func (c *counter) Restore(io.ReadCloser) error         { return fmt.Errorf("not supported") }

type raftNode struct {
	*node
	raft *raft.Raft
	fsm  *counter
}

func startRaft(t *testing.T, n *node, bootstrap []raft.Server) *raftNode {
	t.Helper()
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.net.StreamLayer(n.addr()),
		MaxPool: 3,
		Timeout: 5 * time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.id)
	conf.Logger = hclog.NewNullLogger()
	conf.HeartbeatTimeout = time.Second
	conf.ElectionTimeout = time.Second
	conf.LeaderLeaseTimeout = 500 * time.Millisecond
	store := raft.NewInmemStore()
	fsm := &counter{}
	if bootstrap != nil {
		if err := raft.BootstrapCluster(conf, store, store, raft.NewInmemSnapshotStore(), trans, raft.Configuration{Servers: bootstrap}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Shutdown().Error()
		trans.Close()
	})
	return &raftNode{node: n, raft: r, fsm: fsm}
}

// leader waits until every node agrees on one leader and returns it.
func leader(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var lead *raftNode
	waitFor(t, 30*time.Second, "a leader known to all", func() bool {
		_, id := nodes[0].raft.LeaderWithID()
		if id == "" {
			return false
		}
		lead = nil
		for _, n := range nodes {
			if _, other := n.raft.LeaderWithID(); other != id {
				return false
			}
			if string(id) == n.id {
				lead = n
			}
		}
		return lead != nil
	})
	return lead
}

func apply(t *testing.T, nodes []*raftNode, lead *raftNode, want int) {
	t.Helper()
	if err := lead.raft.Apply([]byte("x"), 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the entry applied everywhere", func() bool {
		for _, n := range nodes {
			if n.fsm.count() != want {
				return false
			}
		}
		return true
	})
}

// Raft runs over the stream layer; a certificate rotation on every node,
// one after the other, recycles the raft connections without an election.
func TestRaftOverStreamLayer(t *testing.T) {
	c := newCluster(t)
	pause := withConfig(func(cfg *peernet.Config) { cfg.RecyclePause = 100 * time.Millisecond })
	plain := []*node{
		c.node(t, "n1", "127.0.0.11", withClusterID("c1"), pause),
		c.node(t, "n2", "127.0.0.12", withClusterID("c1"), pause),
		c.node(t, "n3", "127.0.0.13", withClusterID("c1"), pause),
	}
	var servers []raft.Server
	for _, n := range plain {
		servers = append(servers, raft.Server{ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.addr())})
	}
	var nodes []*raftNode
	for i, n := range plain {
		var boot []raft.Server
		if i == 0 {
			boot = servers
		}
		nodes = append(nodes, startRaft(t, n, boot))
	}
	lead := leader(t, nodes)
	apply(t, nodes, lead, 1)
	term := lead.raft.CurrentTerm()
	for _, n := range nodes {
		if got := n.net.Stats().RaftConns; got == 0 {
			t.Fatalf("%s has no raft connections", n.id)
		}
	}

	for _, n := range nodes {
		before := n.net.Stats().RaftRecycled
		fresh := c.ca.issue(t, n.ip, n.certFile, n.keyFile)
		if res := n.mgr.Reload(ctxTimeout(t, 10*time.Second)); !res.Rotated {
			t.Fatalf("%s: reload did not rotate: %+v", n.id, res)
		}
		waitFor(t, 10*time.Second, n.id+" to recycle its raft connections", func() bool {
			return n.net.Stats().RaftRecycled > before
		})
		// Some other node must see the new certificate on a raft stream:
		// the followers when n leads (n redials them), the leader when n
		// follows (the leader redials n).
		waitFor(t, 10*time.Second, "a raft stream with "+n.id+"'s new certificate", func() bool {
			return c.admits.any(func(x admission) bool {
				return x.peer.NodeID == n.id && x.peer.Proto == peernet.ProtoRaft && x.peer.Cert.SerialNumber.Cmp(fresh.SerialNumber) == 0
			})
		})
		apply(t, nodes, lead, 2+indexOf(nodes, n))
	}
	for _, n := range nodes {
		if got := n.raft.CurrentTerm(); got != term {
			t.Errorf("%s is in term %d, was %d: the rotation caused an election", n.id, got, term)
		}
	}
	if now := leader(t, nodes); now != lead {
		t.Errorf("leader changed from %s to %s", lead.id, now.id)
	}
}

func indexOf(nodes []*raftNode, n *raftNode) int {
	for i, x := range nodes {
		if x == n {
			return i
		}
	}
	return -1
}
