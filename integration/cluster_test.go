package integration_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// The errors of CONTRACTS.md section 5, until the SDK exports them
// (api.ErrOutcomeUnknown): api.Error compares by message, so errors.Is
// matches the server's answer whether or not the SDK has its own sentinel.
// Switch to api.ErrOutcomeUnknown once it exists.
var errOutcomeUnknown = &api.Error{Status: http.StatusInternalServerError, Message: "the outcome of the write is unknown"}

// isOutcomeUnknown reports whether err says a write may or may not have
// been applied: the server's "outcome unknown", or the SDK refusing to
// send a once-only request elsewhere after it reached an endpoint.
func isOutcomeUnknown(err error) bool {
	return errors.Is(err, errOutcomeUnknown) ||
		strings.Contains(err.Error(), "the outcome of the write is unknown") ||
		strings.Contains(err.Error(), "it may have been applied")
}

// isRetryable reports whether err is a 503 (no leader, overloaded, not
// ready) from some endpoint: nothing was applied, the request may be
// sent again.
func isRetryable(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Status == http.StatusServiceUnavailable
}

// TestClusterFormsWithBootstrapExpect: three nodes started at once with
// bootstrap_expect: 3 form one cluster: every node lists the same three
// voters and exactly one leader, and exactly one node says it leads.
func TestClusterFormsWithBootstrapExpect(t *testing.T) {
	c := SharedCluster(t)
	leader := c.Leader()
	for _, n := range c.Nodes {
		members := c.WaitMembers(n, 10*time.Second, "n1", "n2", "n3")
		var leaders []string
		for _, m := range members {
			if m.Leader {
				leaders = append(leaders, m.ID)
			}
			want := c.Node(int(m.ID[1] - '0'))
			if m.PeerAddress != want.PeerAddr || strings.TrimPrefix(m.APIAddress, "https://") != want.Addr {
				t.Errorf("%s lists %s at peer %s, API %s; want %s, %s", n.ID, m.ID, m.PeerAddress, m.APIAddress, want.PeerAddr, want.Addr)
			}
		}
		if len(leaders) != 1 || leaders[0] != leader.ID {
			t.Errorf("%s lists the leaders %v; /v1/status says %s", n.ID, leaders, leader.ID)
		}
	}
}

// TestWriteThroughFollowerIsReadEverywhere: a key created through a
// follower is usable through every other node as soon as the create
// returned, without any wait.
func TestWriteThroughFollowerIsReadEverywhere(t *testing.T) {
	c := SharedCluster(t)
	ctx := ctxT(t)
	leader := c.Leader()
	for _, f := range c.Followers(leader) {
		writer := c.ClientOf(f)
		for i := range 10 {
			name := fmt.Sprintf("through-%s-%d", f.ID, i)
			if err := writer.CreateKey(ctx, name); err != nil {
				t.Fatalf("create %s through follower %s: %v", name, f.ID, err)
			}
			for _, other := range c.Nodes {
				if other == f {
					continue
				}
				ct, err := c.ClientOf(other).Encrypt(ctx, name, []byte("hello"), nil)
				if err != nil {
					t.Fatalf("encrypt with %s through %s right after it was created through %s: %v", name, other.ID, f.ID, err)
				}
				if _, err := writer.Decrypt(ctx, name, ct, nil); err != nil {
					t.Fatalf("decrypt through %s what %s encrypted: %v", f.ID, other.ID, err)
				}
			}
			if err := writer.DeleteKey(ctx, name); err != nil {
				t.Fatalf("delete %s: %v", name, err)
			}
		}
	}
}

// call is one SDK call of a traffic generator.
type call struct {
	write      bool
	start, end time.Time
	err        error
}

// callLog records calls from many goroutines.
type callLog struct {
	mu    sync.Mutex
	calls []call
}

func (l *callLog) add(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *callLog) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// firstSuccessAfter returns the first successful call of the kind that
// started at or after t, by its end.
func firstSuccessAfter(calls []call, write bool, t time.Time) (call, bool) {
	var best call
	found := false
	for _, c := range calls {
		if c.write == write && c.err == nil && !c.start.Before(t) && (!found || c.end.Before(best.end)) {
			best, found = c, true
		}
	}
	return best, found
}

// rotated returns nodes starting at index k, wrapping: clients of a
// traffic generator start at different nodes.
func rotated(nodes []*ClusterNode, k int) []*ClusterNode {
	k %= len(nodes)
	return append(slices.Clone(nodes[k:]), nodes[:k]...)
}

// TestLeaderFailover kills the leader with SIGKILL under a steady stream
// of SDK calls (writes and reads, all three endpoints): a new leader is
// known and writes succeed again within 3s; every call that failed
// meanwhile failed with a retryable or an outcome-unknown error. The
// killed node restarts and catches up; with a low snapshot threshold and
// enough writes while it was down, through a snapshot install.
func TestLeaderFailover(t *testing.T) {
	// The default timings: the failover measured is the one operators get.
	var raftOpts RaftOptions
	raftOpts.SnapshotThreshold = 16
	raftOpts.SnapshotInterval = 500 * time.Millisecond
	raftOpts.TrailingLogs = 4
	c := MustStartCluster(t, 3, ClusterOptions{Raft: raftOpts})
	ctx := ctxT(t)
	if err := c.Client().CreateKey(ctx, "failover"); err != nil {
		t.Fatal(err)
	}
	old := c.Leader()

	var (
		log  callLog
		stop = make(chan struct{})
		wg   sync.WaitGroup
		seq  atomic.Int64
	)
	for g := range 6 {
		write := g%2 == 0
		client := c.ClientOf(rotated(c.Nodes, g)...)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				callCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				start := time.Now()
				var err error
				if write {
					err = client.CreateKey(callCtx, fmt.Sprintf("fo-%d-%d", g, seq.Add(1)))
				} else {
					_, err = client.Encrypt(callCtx, "failover", []byte("steady"), nil)
				}
				cancel()
				log.add(call{write: write, start: start, end: time.Now(), err: err})
			}
		})
	}
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()
	waitFor(t, 10*time.Second, "calls before the kill", func() bool { return len(log.snapshot()) > 50 })

	killed := time.Now()
	c.Kill(old.Index)
	var leader *ClusterNode
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		n, err := c.LeaderNow()
		if err == nil && n != old {
			leader = n
			return true
		}
		return false
	})
	newLeaderAfter := time.Since(killed)
	waitFor(t, 10*time.Second, "a write that started after the kill to succeed", func() bool {
		_, ok := firstSuccessAfter(log.snapshot(), true, killed)
		return ok
	})
	waitFor(t, 10*time.Second, "more traffic after the failover", func() bool {
		n := 0
		for _, cl := range log.snapshot() {
			if cl.err == nil && cl.start.After(killed) {
				n++
			}
		}
		return n > 50
	})
	stopTraffic()

	calls := log.snapshot()
	w, _ := firstSuccessAfter(calls, true, killed)
	writesAfter := w.end.Sub(killed)
	readsAfter := time.Duration(0)
	if r, ok := firstSuccessAfter(calls, false, killed); ok {
		readsAfter = r.end.Sub(killed)
	}
	t.Logf("failover: SIGKILL of leader %s; new leader %s known after %v; first write started after the kill succeeded after %v, first read after %v",
		old.ID, leader.ID, newLeaderAfter.Round(time.Millisecond), writesAfter.Round(time.Millisecond), readsAfter.Round(time.Millisecond))
	if newLeaderAfter >= 3*time.Second {
		t.Errorf("a new leader was known %v after the kill, want < 3s", newLeaderAfter)
	}
	if writesAfter >= 3*time.Second {
		t.Errorf("writes succeeded again %v after the kill, want < 3s", writesAfter)
	}
	var failed, retryable, unknown int
	for _, cl := range calls {
		if cl.err == nil {
			continue
		}
		failed++
		switch {
		case cl.end.Before(killed):
			t.Errorf("a call failed before the kill: %v", cl.err)
		case isRetryable(cl.err):
			retryable++
		case cl.write && isOutcomeUnknown(cl.err):
			unknown++
		case cl.write && errors.Is(cl.err, api.ErrKeyExists):
			t.Errorf("a create of a fresh name answered %q: a create whose first attempt was applied was sent again", cl.err)
		default:
			t.Errorf("a call (write %v) failed with neither a retryable nor an outcome-unknown error: %v", cl.write, cl.err)
		}
	}
	t.Logf("failover: %d calls, %d failed (%d retryable, %d outcome unknown)", len(calls), failed, retryable, unknown)

	// While the old leader is down: a key it has never seen, and enough
	// writes that the new leader snapshots (three times, so its log is
	// compacted past anything the killed node has) and the killed node can
	// catch up only through a snapshot install.
	client := c.ClientOf(c.Followers(old)...)
	if err := client.CreateKey(ctx, "while-down"); err != nil {
		t.Fatal(err)
	}
	offset := leader.Log.Len()
	written := 0
	waitFor(t, 60*time.Second, "three snapshots on the new leader", func() bool {
		for range 20 {
			if err := client.CreateKey(ctx, fmt.Sprintf("fill-%d", written)); err != nil {
				t.Fatalf("create fill-%d: %v", written, err)
			}
			written++
		}
		return CountLogLines(leader.Log.Since(offset), "snapshot complete up to") >= 3
	})
	t.Logf("%d keys written while %s was down", written, old.ID)

	restartOffset := old.Log.Len()
	c.Restart(old.Index)
	waitFor(t, 30*time.Second, old.ID+" to install a snapshot", func() bool {
		return LogLine(old.Log.Since(restartOffset), "Installed remote snapshot") != ""
	})
	back := c.ClientOf(old)
	for _, name := range []string{"while-down", fmt.Sprintf("fill-%d", written-1), "failover"} {
		if _, err := back.Encrypt(ctx, name, []byte("caught up"), nil); err != nil {
			t.Errorf("encrypt with %s through the restarted %s: %v", name, old.ID, err)
		}
	}
}

// TestRemoveAndAddNode removes a follower; the cluster keeps serving with
// two; a fresh node added with add-node (POST /v1/cluster/members against
// a follower) and one started with only cluster.join become voters and
// serve keys created before they joined.
func TestRemoveAndAddNode(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	ctx := ctxT(t)
	leader := c.Leader()
	followers := c.Followers(leader)
	gone, asked := followers[0], followers[1]

	if err := c.RemoveMember(asked, gone.ID); err != nil {
		t.Fatalf("remove %s through %s: %v", gone.ID, asked.ID, err)
	}
	c.WaitMembers(leader, 10*time.Second, leader.ID, asked.ID)
	c.WaitMembers(asked, 10*time.Second, leader.ID, asked.ID)
	c.Stop(gone.Index)

	two := c.ClientOf(leader, asked)
	if err := two.CreateKey(ctx, "after-remove"); err != nil {
		t.Fatalf("create with two nodes left: %v", err)
	}
	for _, n := range []*ClusterNode{leader, asked} {
		if _, err := c.ClientOf(n).Encrypt(ctx, "after-remove", []byte("x"), nil); err != nil {
			t.Fatalf("encrypt through %s with two nodes left: %v", n.ID, err)
		}
	}

	added := c.PrepareNode(nil) // no formation setting: it waits to be added
	c.StartNode(added)
	c.WaitNodeLive(added, 30*time.Second)
	m, err := c.AddMember(asked, added.PeerAddr)
	if err != nil {
		t.Fatalf("add-node %s through %s: %v", added.PeerAddr, asked.ID, err)
	}
	if m.ID != added.ID {
		t.Errorf("add-node answered member %+v, want id %s", m, added.ID)
	}
	c.WaitMembers(leader, 30*time.Second, leader.ID, asked.ID, added.ID)
	c.WaitNodeReady(added, 30*time.Second)

	var e *api.Error
	if _, err := c.AddMember(leader, added.PeerAddr); !errors.As(err, &e) || e.Status != http.StatusConflict {
		t.Errorf("adding %s a second time: %v, want 409", added.ID, err)
	}

	joined := c.PrepareNode(func(n *ClusterNode, cfg *NodeConfig) {
		cfg.Cluster.Join = PeerAddrs(leader, asked, added)
	})
	c.StartNode(joined)
	c.WaitMembers(leader, 30*time.Second, leader.ID, asked.ID, added.ID, joined.ID)
	c.WaitNodeReady(joined, 30*time.Second)

	for _, n := range []*ClusterNode{added, joined} {
		if _, err := c.ClientOf(n).Encrypt(ctx, "after-remove", []byte("x"), nil); err != nil {
			t.Errorf("encrypt through the new %s: %v", n.ID, err)
		}
	}
}

// TestBootstrapOneAndGrow: a cluster bootstrapped on one node, grown with
// add-node (a node with no formation setting) and with cluster.join.
func TestBootstrapOneAndGrow(t *testing.T) {
	c := MustNewCluster(t, 3, ClusterOptions{Formation: FormBootstrapFirstOnly, Raft: FastRaft()})
	first, third := c.Node(1), c.Node(3)
	cfg := third.Config
	cfg.Cluster.Join = []string{first.PeerAddr}
	c.WriteConfig(third, cfg)

	c.Start()
	c.WaitNodeReady(first, 30*time.Second)
	ctx := ctxT(t)
	if err := c.ClientOf(first).CreateKey(ctx, "before-growing"); err != nil {
		t.Fatal(err)
	}
	c.WaitNodeLive(c.Node(2), 30*time.Second)
	if _, err := c.AddMember(first, c.Node(2).PeerAddr); err != nil {
		t.Fatalf("add-node n2: %v", err)
	}
	c.WaitMembers(first, 30*time.Second, "n1", "n2", "n3")
	c.WaitReady(30 * time.Second)
	for _, n := range c.Nodes {
		if _, err := c.ClientOf(n).Encrypt(ctx, "before-growing", []byte("x"), nil); err != nil {
			t.Errorf("encrypt through %s: %v", n.ID, err)
		}
	}
}

// The ALPN protocols of the inter-node port (CONTRACTS.md section 2).
const (
	protoRaft = "minkms-raft/1"
	protoRPC  = "minkms-rpc/1"
)

// peerDialer opens TLS connections to inter-node ports from a chosen
// source IP with a chosen client certificate; it is also a client-only
// raft.StreamLayer, so that raft's own transport speaks raft's wire format.
type peerDialer struct {
	tls      *tls.Config
	sourceIP string

	mu     sync.Mutex
	locals []string // local addresses of the connections dialed
	closed chan struct{}
	once   sync.Once
}

var _ raft.StreamLayer = (*peerDialer)(nil)

func newPeerDialer(cfg *tls.Config, sourceIP string) *peerDialer {
	return &peerDialer{tls: cfg, sourceIP: sourceIP, closed: make(chan struct{})}
}

// dial connects to addr and completes the TLS handshake.
func (d *peerDialer) dial(addr string, timeout time.Duration) (*tls.Conn, string, error) {
	nd := &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(d.sourceIP)}}
	raw, err := nd.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	local := raw.LocalAddr().String()
	d.mu.Lock()
	d.locals = append(d.locals, local)
	d.mu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	cfg := d.tls.Clone()
	cfg.ServerName = host
	conn := tls.Client(raw, cfg)
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := conn.Handshake(); err != nil {
		raw.Close()
		return nil, local, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, local, nil
}

func (d *peerDialer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, _, err := d.dial(string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

func (d *peerDialer) Accept() (net.Conn, error) {
	<-d.closed
	return nil, errors.New("peer dialer: closed")
}

func (d *peerDialer) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *peerDialer) Addr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(d.sourceIP)} }

func (d *peerDialer) localAddrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.locals)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPeerPortRefusesAPIClientCert: an API client certificate from the
// cluster's own CA, naming node 1's IP and connecting from node 1's IP,
// can neither open a raft stream nor call the internal RPC on any node's
// inter-node port: the node closes the connection (well within its
// handshake deadline, not ours), answers nothing, and logs the refused
// connection with its remote address.
func TestPeerPortRefusesAPIClientCert(t *testing.T) {
	c := SharedCluster(t)
	impostor := c.Node(1).IP
	clientCert := c.CA.Issue(t, []string{impostor}, x509.ExtKeyUsageClientAuth).TLSCertificate(t)
	base := &tls.Config{
		Certificates: []tls.Certificate{clientCert},
		RootCAs:      c.caPool(),
		MinVersion:   tls.VersionTLS13,
	}
	leader := c.Leader()

	for _, n := range c.Nodes {
		t.Run("Raft/"+n.ID, func(t *testing.T) {
			c := c.For(t)
			offset := n.Log.Len()
			cfg := base.Clone()
			cfg.NextProtos = []string{protoRaft}
			d := newPeerDialer(cfg, impostor)
			trans := raft.NewNetworkTransport(d, 1, 15*time.Second, io.Discard)
			defer trans.Close()
			var resp raft.AppendEntriesResponse
			err := trans.AppendEntries(raft.ServerID(n.ID), raft.ServerAddress(n.PeerAddr), &raft.AppendEntriesRequest{
				RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n1"), Addr: []byte(c.Node(1).PeerAddr)},
				Term:      0, // stale: harmless should it ever reach raft
			}, &resp)
			if err == nil {
				t.Fatalf("raft answered an API client certificate on %s: %+v", n.PeerAddr, resp)
			}
			if isTimeout(err) {
				t.Fatalf("%s kept the raft connection of an API client certificate open for 15s: %v", n.ID, err)
			}
			expectRefusalLogged(t, n, offset, d.localAddrs())
		})
		t.Run("RPC/"+n.ID, func(t *testing.T) {
			offset := n.Log.Len()
			cfg := base.Clone()
			cfg.NextProtos = []string{protoRPC}
			d := newPeerDialer(cfg, impostor)
			conn, local, err := d.dial(n.PeerAddr, 5*time.Second)
			if err != nil {
				// Refused at the TLS handshake: nothing reached the RPC.
				t.Logf("TLS handshake from %s refused: %v", local, err)
				expectRefusalLogged(t, n, offset, []string{local})
				return
			}
			defer conn.Close()
			body := `{"index":1}`
			req := fmt.Sprintf("POST /rpc/apply HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				n.PeerAddr, len(body), body)
			_, _ = conn.Write([]byte(req)) // the node may have closed already
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			answer, err := io.ReadAll(conn)
			if isTimeout(err) {
				t.Fatalf("%s kept the RPC connection of an API client certificate open for 15s", n.ID)
			}
			if strings.Contains(string(answer), "HTTP/1.") {
				t.Fatalf("the internal RPC of %s answered an API client certificate:\n%s", n.ID, answer)
			}
			expectRefusalLogged(t, n, offset, []string{local})
		})
	}
	if now := c.Leader(); now != leader {
		t.Errorf("the leader changed from %s to %s", leader.ID, now.ID)
	}
}

// expectRefusalLogged waits until n logged a line that names one of the
// refused connections' remote addresses (our local addresses).
func expectRefusalLogged(t *testing.T, n *ClusterNode, offset int, remotes []string) {
	t.Helper()
	if len(remotes) == 0 {
		t.Fatal("no connection was dialed")
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to log the refused connection from %v", n.ID, remotes), func() bool {
		log := n.Log.Since(offset)
		for _, r := range remotes {
			if LogLine(log, r) != "" {
				return true
			}
		}
		return false
	})
}

// joinRefusals are the nodes that must not join, and the words (case-
// insensitive, all in one WARN or ERROR log line) each side says why with. One table, so
// that the server's messages and these expectations are aligned in one
// place. viaAddNode: the unfit node is a cluster of its own and is added
// with add-node instead of joining.
var joinRefusals = []struct {
	name       string
	unfit      func(t *testing.T, c *Cluster, n *ClusterNode, cfg *NodeConfig) (host string)
	viaAddNode bool
	joiner     []string // the refused node's log; "{host}" is replaced by what unfit returned
	member     []string // some member's log
	answer     []string // the message of the 400 answer to add-node
}{
	{
		name: "ForeignCA",
		unfit: func(t *testing.T, c *Cluster, n *ClusterNode, cfg *NodeConfig) string {
			ca := MustNewCA(t, filepath.Join(n.Dir, "foreign-ca"), "foreign CA")
			n.CertFile, n.KeyFile = ca.MustWriteLeaf(t, filepath.Join(n.Dir, "foreign-ca"), "node", n.IP)
			cfg.TLS.Certs = []CertPair{{Cert: n.CertFile, Key: n.KeyFile}}
			cfg.TLS.CA = ca.CertFile
			return ""
		},
		// The joiner cannot verify the member's certificate; the member only
		// hears the TLS alert the joiner sends.
		joiner: []string{"unknown authority"},
		member: []string{"bad certificate"},
		answer: []string{"unknown authority"},
	},
	{
		name: "OtherRootKey",
		unfit: func(t *testing.T, c *Cluster, n *ClusterNode, cfg *NodeConfig) string {
			cfg.RootKey.File = filepath.Join(n.Dir, "other-root.key")
			writeRootKey(t, cfg.RootKey.File)
			return ""
		},
		joiner: []string{"root key"},
		member: []string{"root key"},
		answer: []string{"root key"},
	},
	{
		name: "OtherAdmins",
		unfit: func(t *testing.T, c *Cluster, n *ClusterNode, cfg *NodeConfig) string {
			cfg.Admins = []string{MustAPIKey(t).Identity()}
			return ""
		},
		joiner: []string{"admins"},
		member: []string{"admins"},
		answer: []string{"admins"},
	},
	{
		name: "OtherClusterID",
		// Same CA, root key and admins, but a cluster of its own.
		unfit: func(t *testing.T, c *Cluster, n *ClusterNode, cfg *NodeConfig) string {
			cfg.Cluster.Join = nil
			cfg.Cluster.Bootstrap = true
			return ""
		},
		viaAddNode: true,
		joiner:     []string{"belongs to cluster"},
		member:     []string{"belongs to cluster"},
		answer:     []string{"belongs to cluster"},
	},
}

// TestJoinRefusals: a node whose certificate lacks its advertised peer
// host, one from a foreign CA, one with another root key, one with other
// admins (each joining through cluster.join) and one of another cluster
// (added with add-node) are refused; both sides say why in their logs, the
// add-node answer says why, no log holds a root key, and the cluster keeps
// its three members.
func TestJoinRefusals(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	members := slices.Clone(c.Nodes)
	leader := c.Leader()
	asked := c.Followers(leader)[0]

	for _, tc := range joinRefusals {
		t.Run(tc.name, func(t *testing.T) {
			c := c.For(t)
			offsets := c.LogOffsets()
			var host string
			n := c.PrepareNode(func(n *ClusterNode, cfg *NodeConfig) {
				cfg.Cluster.Join = PeerAddrs(members...)
				host = tc.unfit(t, c, n, cfg)
			})
			words := func(ws []string) []string {
				out := slices.Clone(ws)
				for i := range out {
					out[i] = strings.ReplaceAll(out[i], "{host}", host)
				}
				return out
			}
			c.StartNode(n)
			defer c.Stop(n.Index)
			waitForState(t, 30*time.Second, n.ID+" to listen on its peer address "+n.PeerAddr, func() (bool, string) {
				if !n.Running() {
					return false, "not running"
				}
				conn, err := net.DialTimeout("tcp", n.PeerAddr, time.Second)
				if err != nil {
					return false, err.Error()
				}
				conn.Close()
				return true, ""
			})
			bothSaidWhy := func() {
				t.Helper()
				waitFor(t, 30*time.Second, fmt.Sprintf("the refused %s to log a warning or error with %q", n.ID, words(tc.joiner)), func() bool {
					return LogProblem(n.Log.String(), words(tc.joiner)...) != ""
				})
				waitFor(t, 30*time.Second, fmt.Sprintf("a member to log a warning or error with %q", words(tc.member)), func() bool {
					for _, m := range members {
						if LogProblem(m.Log.Since(offsets[m]), words(tc.member)...) != "" {
							return true
						}
					}
					return false
				})
			}
			if tc.viaAddNode {
				c.WaitNodeReady(n, 30*time.Second)
			} else {
				bothSaidWhy() // through its own cluster.join
			}

			_, err := c.AddMember(asked, n.PeerAddr)
			var e *api.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
				t.Errorf("add-node of the unfit %s: %v, want a 400 refusal", n.ID, err)
			} else if LogLine(e.Message, words(tc.answer)...) == "" {
				t.Errorf("add-node refusal %q does not say %q", e.Message, words(tc.answer))
			}
			if tc.viaAddNode {
				bothSaidWhy()
			}
			c.WaitMembers(leader, 5*time.Second, "n1", "n2", "n3")

			rootKeys := []string{c.RootKey}
			if data, err := os.ReadFile(n.Config.RootKey.File); err == nil {
				rootKeys = append(rootKeys, strings.TrimSpace(string(data)))
			}
			for _, node := range append(slices.Clone(members), n) {
				for _, rk := range rootKeys {
					if strings.Contains(node.Log.String(), rk) {
						t.Errorf("the log of %s holds a root key", node.ID)
					}
				}
			}
		})
	}
}

// writeRootKey writes a new root key to path (0600).
func writeRootKey(tb testing.TB, path string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(server.GenerateRootKey()+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// servedSerialAt dials addr (with ALPN protos, if any, and a client
// certificate from the cluster CA) and returns the serial of the
// certificate it presents.
func servedSerialAt(tb testing.TB, c *Cluster, addr, ip string, protos ...string) (string, error) {
	tb.Helper()
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{
		RootCAs:      c.caPool(),
		ServerName:   host,
		NextProtos:   protos,
		Certificates: []tls.Certificate{c.CA.Issue(tb, []string{ip}).TLSCertificate(tb)},
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// TestRollingCertificateRotation replaces every node's certificate, node
// by node (new files, then `minkms cert reload` against that node), under
// continuous client traffic on fresh and on kept-alive connections: no
// request fails, each node serves its new certificate on both ports, and
// raft stays up: no node enters candidate state, the leader stays.
func TestRollingCertificateRotation(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	ctx := ctxT(t)
	if err := c.Client().CreateKey(ctx, "rolling"); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader()
	offsets := c.LogOffsets()

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		seq      atomic.Int64
	)
	record := func(err error) {
		requests.Add(1)
		if err != nil {
			failures.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
	}
	for g := range 4 {
		fresh := g%2 == 0
		kept := c.ClientOf(rotated(c.Nodes, g)...)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				callCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				if fresh {
					// A new client, so a new connection and handshake, starting
					// at a different node each time.
					cl := c.ClientOf(rotated(c.Nodes, int(seq.Add(1)))...)
					ct, err := cl.Encrypt(callCtx, "rolling", []byte("fresh"), nil)
					if err == nil {
						_, err = cl.Decrypt(callCtx, "rolling", ct, nil)
					}
					cl.CloseIdleConnections()
					record(err)
				} else {
					var err error
					if i%5 == 0 {
						err = kept.CreateKey(callCtx, fmt.Sprintf("rolling-%d-%d", g, i))
					} else {
						_, err = kept.Encrypt(callCtx, "rolling", []byte("kept"), nil)
					}
					record(err)
				}
				cancel()
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, "traffic", func() bool { return requests.Load() > 20 })

	for _, n := range c.Nodes {
		leaf := c.CA.Issue(t, []string{n.IP})
		want := leaf.Serial.Text(16)
		replaceFile(t, n.KeyFile, leaf.KeyPEM)
		replaceFile(t, n.CertFile, leaf.CertPEM)
		if res := c.CLI(n, "cert", "reload"); res.Code != 0 {
			t.Fatalf("cert reload on %s: exit %d\n%s%s", n.ID, res.Code, res.Stdout, res.Stderr)
		}
		for _, port := range []struct {
			name, addr string
			protos     []string
		}{{"API", n.Addr, nil}, {"peer", n.PeerAddr, []string{protoRaft}}} {
			waitForState(t, 10*time.Second, fmt.Sprintf("%s to serve its new certificate (serial %s) on its %s port", n.ID, want, port.name), func() (bool, string) {
				got, err := servedSerialAt(t, c, port.addr, n.IP, port.protos...)
				return got == want, fmt.Sprintf("serial %s, error %v", got, err)
			})
		}
		before := requests.Load()
		waitFor(t, 20*time.Second, "traffic after rotating "+n.ID, func() bool { return requests.Load() > before+30 })
		t.Logf("%s rotated; %d requests so far, %d failed", n.ID, requests.Load(), failures.Load())
	}

	if f := failures.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during the rolling rotation; first: %v", f, requests.Load(), firstErr.Load())
	}
	for _, n := range c.Nodes {
		if line := LogLine(n.Log.Since(offsets[n]), "entering candidate state"); line != "" {
			t.Errorf("%s started an election during the rotation: %s", n.ID, line)
		}
	}
	if now := c.Leader(); now != leader {
		t.Errorf("the leader changed from %s to %s during the rotation", leader.ID, now.ID)
	}
}

// TestCertificateWithoutPeerHost: a node whose certificate names its API
// address but not the host of its advertise_peer, which the other nodes
// dial, refuses to start and says which host is missing (before, it started
// and every peer refused it).
func TestCertificateWithoutPeerHost(t *testing.T) {
	c := MustNewCluster(t, 1, ClusterOptions{Formation: FormBootstrapFirstOnly, Raft: FastRaft()})
	n := c.Node(1)
	peerIP := "127.0.0.101"
	cfg := n.Config
	n.PeerAddr = freePortOn(t, peerIP)
	cfg.Cluster.Address, cfg.Cluster.AdvertisePeer = n.PeerAddr, n.PeerAddr
	c.WriteConfig(n, cfg)
	c.StartNode(n)
	waitForState(t, 30*time.Second, n.ID+" to exit", func() (bool, string) {
		done, _ := n.exited()
		return done != nil && isDone(done), "running"
	})
	if _, err := n.exited(); err == nil {
		t.Fatal("the node exited 0")
	}
	if LogLine(n.Log.String(), "peer host", peerIP, "not in the SANs") == "" {
		t.Errorf("the node does not say which host its certificate lacks:\n%s", n.Log.String())
	}
}
