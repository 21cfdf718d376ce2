package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/storage"
)

// memNet is an in-memory stand-in for the peer network: the internal RPC
// of every node, with the same error coding as peernet (a CodedError keeps
// its code and detail; bodies go through JSON), and raft's in-memory
// transports, connected to each other.
type memNet struct {
	mu       sync.Mutex
	handlers map[string]map[string]peernet.Handler // addr → method → handler
	hellos   map[string]peernet.Hello              // addr → who listens there
	down     map[string]bool                       // addr → unreachable
	trans    map[string]*raft.InmemTransport
}

func newMemNet() *memNet {
	return &memNet{
		handlers: map[string]map[string]peernet.Handler{},
		hellos:   map[string]peernet.Hello{},
		down:     map[string]bool{},
		trans:    map[string]*raft.InmemTransport{},
	}
}

// endpoint is one node's view of the memNet: cluster.RPC for that node.
type endpoint struct {
	net  *memNet
	self peernet.Hello
}

func (e *endpoint) Handle(method string, h peernet.Handler) {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	if e.net.handlers[e.self.PeerAddr] == nil {
		e.net.handlers[e.self.PeerAddr] = map[string]peernet.Handler{}
	}
	e.net.handlers[e.self.PeerAddr][method] = h
}

func (e *endpoint) Call(ctx context.Context, addr, method string, req, resp any) (peernet.Peer, error) {
	e.net.mu.Lock()
	h := e.net.handlers[addr][method]
	to := e.net.hellos[addr]
	down := e.net.down[addr] || e.net.down[e.self.PeerAddr]
	e.net.mu.Unlock()
	if h == nil || down {
		return peernet.Peer{}, fmt.Errorf("call %s at %s: %w", method, addr, peernet.ErrUnreachable)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return peernet.Peer{}, err
	}
	out, err := h(ctx, peernet.Peer{Hello: e.self}, body)
	if err != nil {
		var ce peernet.CodedError
		if errors.As(err, &ce) {
			d, _ := json.Marshal(ce.RPCDetail())
			return peernet.Peer{Hello: to}, &peernet.RemoteError{Code: ce.RPCCode(), Message: err.Error(), Detail: d}
		}
		return peernet.Peer{Hello: to}, &peernet.RemoteError{Code: "internal", Message: err.Error()}
	}
	if resp != nil {
		b, err := json.Marshal(out)
		if err != nil {
			return peernet.Peer{}, err
		}
		if err := json.Unmarshal(b, resp); err != nil {
			return peernet.Peer{}, err
		}
	}
	return peernet.Peer{Hello: to}, nil
}

// transport returns the raft transport of addr, connected both ways with
// every other transport of the net.
func (m *memNet) transport(addr string) *raft.InmemTransport {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.trans[addr]; ok {
		return t
	}
	_, t := raft.NewInmemTransport(raft.ServerAddress(addr))
	for a, o := range m.trans {
		t.Connect(raft.ServerAddress(a), o)
		o.Connect(raft.ServerAddress(addr), t)
	}
	m.trans[addr] = t
	return t
}

// isolate cuts addr off from every other node (raft and RPC), or heals it.
func (m *memNet) isolate(addr string, cut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[addr] = cut
	t := m.trans[addr]
	for a, o := range m.trans {
		if a == addr {
			continue
		}
		if cut {
			t.Disconnect(raft.ServerAddress(a))
			o.Disconnect(raft.ServerAddress(addr))
		} else {
			t.Connect(raft.ServerAddress(a), o)
			o.Connect(raft.ServerAddress(addr), t)
		}
	}
}

// fastTiming makes elections quick in tests.
var fastTiming = cluster.Timing{
	HeartbeatTimeout:   200 * time.Millisecond,
	ElectionTimeout:    200 * time.Millisecond,
	LeaderLeaseTimeout: 100 * time.Millisecond,
}

// testNode is one node of a test cluster, reopenable.
type testNode struct {
	*cluster.Node
	ID, Addr, Dir string
	Store         *storage.DB
	cfg           cluster.Config
}

type testCluster struct {
	t     testing.TB
	net   *memNet
	nodes []*testNode
}

// newTestCluster prepares n nodes n1..nN; mod may change each config.
func newTestCluster(tb testing.TB, n int, mod func(i int, c *cluster.Config)) *testCluster {
	tb.Helper()
	tc := &testCluster{t: tb, net: newMemNet()}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("n%d:7374", i+1))
	}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		tn := &testNode{ID: id, Addr: peers[i], Dir: tb.TempDir()}
		tn.cfg = cluster.Config{
			NodeID: id, PeerAddr: tn.Addr, APIAddr: id + ":7373", DataDir: tn.Dir,
			Timing: fastTiming, AdminsDigest: "admins", ProposeTimeout: 5 * time.Second,
			BootstrapExpect: n, Join: peers,
		}
		if mod != nil {
			mod(i, &tn.cfg)
		}
		tc.nodes = append(tc.nodes, tn)
	}
	return tc
}

// start opens node i (again).
func (tc *testCluster) start(i int) *testNode {
	tc.t.Helper()
	tn := tc.nodes[i]
	if tn.Store == nil {
		tn.Store = MustStore(tc.t, tn.Dir)
	}
	cfg := tn.cfg
	cfg.Store = tn.Store
	cfg.Transport = tc.net.transport(tn.Addr)
	ep := &endpoint{net: tc.net, self: peernet.Hello{NodeID: tn.ID, PeerAddr: tn.Addr}}
	cfg.RPC = ep
	tc.net.mu.Lock()
	tc.net.hellos[tn.Addr] = ep.self
	tc.net.mu.Unlock()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	node, err := cluster.Open(cfg)
	if err != nil {
		tc.t.Fatalf("open %s: %v", tn.ID, err)
	}
	tn.Node = node
	tc.t.Cleanup(func() { node.Close() })
	return tn
}

func (tc *testCluster) startAll() {
	tc.t.Helper()
	for i := range tc.nodes {
		tc.start(i)
	}
}

// stop closes node i and its store, as a crash would leave them.
func (tc *testCluster) stop(i int) {
	tc.t.Helper()
	tn := tc.nodes[i]
	tn.Node.Close()
	tn.Store.Close()
	tn.Store = nil
	tc.net.mu.Lock()
	delete(tc.net.handlers, tn.Addr)
	tc.net.mu.Unlock()
}

// leader waits for a leader among the running nodes and returns it.
func (tc *testCluster) leader() *testNode {
	tc.t.Helper()
	var l *testNode
	waitFor(tc.t, 10*time.Second, "a leader", func() bool {
		for _, n := range tc.nodes {
			if n.Node != nil && n.Store != nil && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func (tc *testCluster) followers() []*testNode {
	l := tc.leader()
	var out []*testNode
	for _, n := range tc.nodes {
		if n != l && n.Store != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitVoters waits until the leader's configuration has want voters, and
// every running member has received that configuration and knows the
// leader.
func (tc *testCluster) waitVoters(want int) {
	tc.t.Helper()
	waitFor(tc.t, 15*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		l := tc.leader()
		members, err := l.Members(context.Background())
		if err != nil {
			return false
		}
		ids := map[string]bool{}
		voters := 0
		for _, m := range members {
			ids[m.ID] = true
			if m.Voter {
				voters++
			}
		}
		if voters != want {
			return false
		}
		for _, n := range tc.nodes {
			if n.Node == nil || n.Store == nil || !ids[n.ID] {
				continue
			}
			ms, err := n.Members(context.Background())
			if err != nil || len(ms) != len(members) {
				return false
			}
			if id, _ := n.Leader(); id != l.ID {
				return false
			}
		}
		return true
	})
}

func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

var _ = filepath.Join
