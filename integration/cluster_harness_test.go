package integration_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// The cluster harness starts n real minkms processes that share one PKI,
// one root key and one admin API key. Node i (1-based, id "n<i>") has a
// loopback address of its own, 127.0.0.1<i> (127.0.0.11, .12, .13, ...),
// and its certificate names only that IP, so that the peers' host checks
// mean something. Its API and peer ports are free ports on that IP.

// Formation says how the nodes of a new cluster are told to form it.
type Formation int

const (
	// FormBootstrapExpect: every node has bootstrap_expect: n and join
	// listing every node's peer address (its own included, as `make run`
	// does), and all are started at once.
	FormBootstrapExpect Formation = iota
	// FormBootstrapFirst: node 1 has bootstrap: true; every other node
	// has only join, listing every other node's peer address.
	FormBootstrapFirst
	// FormBootstrapFirstOnly: node 1 has bootstrap: true; the others have
	// no formation setting: they wait until they are added (add-node).
	FormBootstrapFirstOnly
	// FormNone: no node has a formation setting; ClusterOptions.Configure
	// sets what the test needs.
	FormNone
)

// RaftOptions are the cluster.raft settings; zero values are left out of
// the config, so the node's defaults apply.
type RaftOptions struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
}

// FastRaft are the timings the cluster tests use: a failover well within
// three seconds on loopback.
func FastRaft() RaftOptions {
	return RaftOptions{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
	}
}

// ClusterOptions change how a cluster is set up.
type ClusterOptions struct {
	Formation Formation
	Raft      RaftOptions
	MaxStale  time.Duration // cluster.max_stale; 0 leaves the default
	// Configure, if set, has the last word on each node's config before it
	// is written (also for nodes added later with PrepareNode).
	Configure func(n *ClusterNode, cfg *NodeConfig)
	// RootKey, if set, is the cluster's root key (another cluster's
	// RootKey) instead of a new one: a cluster that can restore the
	// other's backups.
	RootKey string
}

// NodeConfig is a node's YAML config file, as CONTRACTS.md section 3 has it.
type NodeConfig struct {
	Version string `yaml:"version"`
	Address string `yaml:"address"`
	DataDir string `yaml:"data_dir"`
	RootKey struct {
		File string `yaml:"file"`
	} `yaml:"root_key"`
	Admins []string `yaml:"admins"`
	TLS    struct {
		Certs          []CertPair `yaml:"certs"`
		CA             string     `yaml:"ca"`
		ReloadInterval string     `yaml:"reload_interval,omitempty"`
	} `yaml:"tls"`
	Cluster ClusterConfig `yaml:"cluster"`
	Log     struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`
	Debug struct {
		PProf bool `yaml:"pprof,omitempty"`
	} `yaml:"debug,omitempty"`
	Cache struct {
		MaxKeys int `yaml:"max_keys,omitempty"` // 0: the node's default
	} `yaml:"cache,omitempty"`
}

// CertPair is one entry of tls.certs.
type CertPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// ClusterConfig is the cluster section of a node's config.
type ClusterConfig struct {
	NodeID          string     `yaml:"node_id"`
	Advertise       string     `yaml:"advertise"`
	Address         string     `yaml:"address"`
	AdvertisePeer   string     `yaml:"advertise_peer,omitempty"`
	Bootstrap       bool       `yaml:"bootstrap,omitempty"`
	BootstrapExpect int        `yaml:"bootstrap_expect,omitempty"`
	Join            []string   `yaml:"join,omitempty"`
	MaxStale        string     `yaml:"max_stale,omitempty"`
	Raft            RaftConfig `yaml:"raft,omitempty"`
}

// RaftConfig is cluster.raft; empty fields are left out.
type RaftConfig struct {
	HeartbeatTimeout   string `yaml:"heartbeat_timeout,omitempty"`
	ElectionTimeout    string `yaml:"election_timeout,omitempty"`
	LeaderLeaseTimeout string `yaml:"leader_lease_timeout,omitempty"`
	SnapshotThreshold  uint64 `yaml:"snapshot_threshold,omitempty"`
	SnapshotInterval   string `yaml:"snapshot_interval,omitempty"`
	TrailingLogs       uint64 `yaml:"trailing_logs,omitempty"`
}

func durationSetting(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func (o RaftOptions) config() RaftConfig {
	return RaftConfig{
		HeartbeatTimeout:   durationSetting(o.HeartbeatTimeout),
		ElectionTimeout:    durationSetting(o.ElectionTimeout),
		LeaderLeaseTimeout: durationSetting(o.LeaderLeaseTimeout),
		SnapshotThreshold:  o.SnapshotThreshold,
		SnapshotInterval:   durationSetting(o.SnapshotInterval),
		TrailingLogs:       o.TrailingLogs,
	}
}

// Cluster is a set of minkms processes sharing a PKI, a root key and an
// admin API key. Its methods fail the test it is bound to; For binds the
// same cluster to another test (a subtest, or each test of the shared
// cluster).
type Cluster struct {
	// ExtraRoots are more CAs the test's clients trust, for tests that move
	// nodes to certificates of another CA.
	ExtraRoots []*x509.Certificate
	t          testing.TB
	*clusterState
}

// For returns the cluster bound to tb: its methods fail tb. Nodes added
// through either are seen by both.
func (c *Cluster) For(tb testing.TB) *Cluster { return &Cluster{t: tb, clusterState: c.clusterState} }

type clusterState struct {
	Dir         string
	CA          *TestCA
	RootKey     string
	RootKeyFile string
	AdminKey    *api.APIKey
	Opts        ClusterOptions
	Nodes       []*ClusterNode // Nodes[i-1] is node i
	cleanup     func(func())
}

// ClusterNode is one process of a cluster. It holds no test: the Cluster's
// methods act on it.
type ClusterNode struct {
	Index      int    // i: id "n<i>", IP 127.0.0.1<i>
	ID         string // node_id
	IP         string
	Dir        string
	DataDir    string
	ConfigFile string
	Addr       string // API host:port
	URL        string
	PeerAddr   string // cluster.advertise_peer
	CertFile   string
	KeyFile    string
	CAFile     string
	Config     NodeConfig  // as last written
	Log        *syncBuffer // every run's output, restarts included

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	starts int
}

// nodeIP is the loopback address of node i.
func nodeIP(i int) string { return fmt.Sprintf("127.0.0.%d", 10+i) }

// freePortOn returns host:port with a port that was free on ip a moment ago.
func freePortOn(tb testing.TB, ip string) string {
	tb.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("probing a free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().String()
}

// MustNewCluster prepares n nodes (files only; Start starts them) whose
// processes are stopped when the test ends, and whose logs are dumped if
// it failed.
func MustNewCluster(tb testing.TB, n int, opts ClusterOptions) *Cluster {
	tb.Helper()
	var c *Cluster
	// Registered first so that it runs last, once the processes stopped
	// and their logs are complete.
	tb.Cleanup(func() {
		if tb.Failed() && c != nil {
			c.DumpLogs()
		}
	})
	c = newCluster(tb, tb.TempDir(), n, opts, tb.Cleanup)
	return c
}

// MustStartCluster prepares n nodes, starts them all at once and waits
// until every one is ready.
func MustStartCluster(tb testing.TB, n int, opts ClusterOptions) *Cluster {
	tb.Helper()
	c := MustNewCluster(tb, n, opts)
	c.Start()
	c.WaitReady(60 * time.Second)
	return c
}

func newCluster(tb testing.TB, dir string, n int, opts ClusterOptions, cleanup func(func())) *Cluster {
	tb.Helper()
	admin, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{t: tb, clusterState: &clusterState{
		Dir: dir, Opts: opts, AdminKey: admin, RootKey: server.GenerateRootKey(),
		RootKeyFile: filepath.Join(dir, "root.key"), cleanup: cleanup,
	}}
	if opts.RootKey != "" {
		c.RootKey = opts.RootKey
	}
	if err := os.WriteFile(c.RootKeyFile, []byte(c.RootKey+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	c.CA = MustNewCA(tb, filepath.Join(dir, "ca"), "minkms test CA")
	cleanup(c.stopAll)

	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, c.newNode(i))
	}
	var peers []string
	for _, node := range c.Nodes {
		peers = append(peers, node.PeerAddr)
	}
	for _, node := range c.Nodes {
		cfg := c.baseConfig(node)
		switch opts.Formation {
		case FormBootstrapExpect:
			cfg.Cluster.BootstrapExpect = n
			cfg.Cluster.Join = peers
		case FormBootstrapFirst:
			if node.Index == 1 {
				cfg.Cluster.Bootstrap = true
			} else {
				cfg.Cluster.Join = without(peers, node.PeerAddr)
			}
		case FormBootstrapFirstOnly:
			cfg.Cluster.Bootstrap = node.Index == 1
		case FormNone:
		}
		c.writeConfig(node, cfg)
	}
	return c
}

func without(list []string, s string) []string {
	var out []string
	for _, e := range list {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

// newNode lays out node i's directory, certificate and addresses.
func (c *Cluster) newNode(i int) *ClusterNode {
	c.t.Helper()
	ip := nodeIP(i)
	n := &ClusterNode{
		Index: i, ID: fmt.Sprintf("n%d", i), IP: ip, Dir: filepath.Join(c.Dir, fmt.Sprintf("n%d", i)),
		Addr: freePortOn(c.t, ip), PeerAddr: freePortOn(c.t, ip), CAFile: c.CA.CertFile, Log: &syncBuffer{},
	}
	n.DataDir = filepath.Join(n.Dir, "data")
	n.ConfigFile = filepath.Join(n.Dir, "minkms.yaml")
	n.URL = "https://" + n.Addr
	n.CertFile, n.KeyFile = c.CA.MustWriteLeaf(c.t, filepath.Join(n.Dir, "certs"), "node", ip)
	return n
}

// baseConfig is node n's config without any formation setting.
func (c *Cluster) baseConfig(n *ClusterNode) NodeConfig {
	var cfg NodeConfig
	cfg.Version = "v1"
	cfg.Address = n.Addr
	cfg.DataDir = n.DataDir
	cfg.RootKey.File = c.RootKeyFile
	cfg.Admins = []string{c.AdminKey.Identity()}
	cfg.TLS.Certs = []CertPair{{Cert: n.CertFile, Key: n.KeyFile}}
	cfg.TLS.CA = c.CA.CertFile
	cfg.Cluster = ClusterConfig{
		NodeID: n.ID, Advertise: n.Addr, Address: n.PeerAddr, AdvertisePeer: n.PeerAddr,
		MaxStale: durationSetting(c.Opts.MaxStale), Raft: c.Opts.Raft.config(),
	}
	cfg.Log.Level, cfg.Log.Format = "debug", "json"
	return cfg
}

// writeConfig applies ClusterOptions.Configure and writes the file.
func (c *Cluster) writeConfig(n *ClusterNode, cfg NodeConfig) {
	c.t.Helper()
	if c.Opts.Configure != nil {
		c.Opts.Configure(n, &cfg)
	}
	c.WriteConfig(n, cfg)
}

// WriteConfig writes cfg as node n's config file (as is).
func (c *Cluster) WriteConfig(n *ClusterNode, cfg NodeConfig) {
	c.t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(n.ConfigFile, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	n.Config = cfg
}

// PrepareNode lays out one more node (the next index) with no formation
// setting; configure, if set, changes its config (after Configure of the
// options). The node is not started.
func (c *Cluster) PrepareNode(configure func(n *ClusterNode, cfg *NodeConfig)) *ClusterNode {
	c.t.Helper()
	n := c.newNode(len(c.Nodes) + 1)
	c.Nodes = append(c.Nodes, n)
	cfg := c.baseConfig(n)
	if c.Opts.Configure != nil {
		c.Opts.Configure(n, &cfg)
	}
	if configure != nil {
		configure(n, &cfg)
	}
	c.WriteConfig(n, cfg)
	return n
}

// Node returns node i (1-based).
func (c *Cluster) Node(i int) *ClusterNode {
	c.t.Helper()
	if i < 1 || i > len(c.Nodes) {
		c.t.Fatalf("no node %d in a cluster of %d", i, len(c.Nodes))
	}
	return c.Nodes[i-1]
}

// PeerAddrs returns the peer addresses of nodes.
func PeerAddrs(nodes ...*ClusterNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.PeerAddr)
	}
	return out
}

// Start starts every node that is not running, all at once; it does not
// wait for readiness.
func (c *Cluster) Start() {
	c.t.Helper()
	for _, n := range c.Nodes {
		if !n.Running() {
			c.StartNode(n)
		}
	}
}

// StartNode starts node n's process; it does not wait for readiness.
func (c *Cluster) StartNode(n *ClusterNode) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !isDone(n.done) {
		c.t.Fatalf("%s is already running", n.ID)
	}
	n.starts++
	if n.starts > 1 {
		fmt.Fprintf(n.Log, "=== harness: %s started again (run %d) ===\n", n.ID, n.starts)
	}
	cmd := exec.Command(binary, "server", "--config", n.ConfigFile)
	cmd.Stdout, cmd.Stderr = n.Log, n.Log
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether n's process was started and has not exited.
func (n *ClusterNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !isDone(n.done)
}

// PID returns the process id of n's current run, 0 if it is not running.
func (n *ClusterNode) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || isDone(n.done) {
		return 0
	}
	return n.cmd.Process.Pid
}

// exited returns the done channel of the current run.
func (n *ClusterNode) exited() (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done, n.err
}

func (n *ClusterNode) signal(sig os.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || isDone(n.done) {
		return fmt.Errorf("%s is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to node i and waits until the process is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	n := c.Node(i)
	if err := n.signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	done, _ := n.exited()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s did not exit within 10s of SIGKILL", n.ID)
	}
}

// Pause stops node i with SIGSTOP: it keeps its sockets but answers nothing.
func (c *Cluster) Pause(i int) {
	c.t.Helper()
	if err := c.Node(i).signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
}

// Resume continues a paused node i (SIGCONT).
func (c *Cluster) Resume(i int) {
	c.t.Helper()
	if err := c.Node(i).signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
}

// Stop asks node i to shut down (SIGTERM) and waits for it, killing it
// after 20s.
func (c *Cluster) Stop(i int) { c.Node(i).stop() }

func (n *ClusterNode) stop() {
	if !n.Running() {
		return
	}
	_ = n.signal(syscall.SIGCONT) // a paused process handles SIGTERM only once continued
	_ = n.signal(syscall.SIGTERM)
	done, _ := n.exited()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = n.signal(syscall.SIGKILL)
		<-done
	}
}

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
}

// Restart starts node i again (stopping it first if it runs) with the same
// config and data, and waits until it is ready.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.Node(i)
	n.stop()
	c.StartNode(n)
	c.WaitNodeReady(n, 60*time.Second)
}

// WaitReady waits until every running node answers /v1/health/ready with
// 200, all within timeout.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range c.Nodes {
		if n.Running() {
			c.WaitNodeReady(n, time.Until(deadline))
		}
	}
}

// WaitNodeLive waits until node n answers /v1/health/live: its listeners
// are bound, though it may not be in a cluster yet.
func (c *Cluster) WaitNodeLive(n *ClusterNode, timeout time.Duration) {
	c.t.Helper()
	hc := c.httpClient(nil, 2*time.Second)
	defer hc.CloseIdleConnections()
	waitFor(c.t, timeout, n.ID+" to answer /v1/health/live", func() bool {
		resp, err := hc.Get(n.URL + "/v1/health/live")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// WaitNodeReady waits until n answers /v1/health/ready with 200.
func (c *Cluster) WaitNodeReady(n *ClusterNode, timeout time.Duration) {
	c.t.Helper()
	if err := c.waitNodeReady(n, timeout); err != nil {
		c.t.Fatalf("%s (%s) not ready: %v", n.ID, n.URL, err)
	}
}

func (c *Cluster) waitNodeReady(n *ClusterNode, timeout time.Duration) error {
	hc := c.httpClient(nil, 2*time.Second)
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		done, err := n.exited()
		if done == nil {
			return errors.New("never started")
		}
		if isDone(done) {
			return fmt.Errorf("process exited: %v", err)
		}
		resp, err := hc.Get(n.URL + "/v1/health/ready")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("deadline of %s passed; last answer: %s", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caPool is the cluster CA as a pool.
func (c *Cluster) caPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.CA.Cert)
	for _, ca := range c.ExtraRoots {
		pool.AddCert(ca)
	}
	return pool
}

// httpClient is a plain HTTPS client that trusts the cluster CA and, with
// key, presents the certificate derived from it.
func (c *Cluster) httpClient(key *api.APIKey, timeout time.Duration) *http.Client {
	c.t.Helper()
	cfg := &tls.Config{RootCAs: c.caPool(), MinVersion: tls.VersionTLS12}
	if key != nil {
		cert, err := key.Certificate()
		if err != nil {
			c.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// Client returns an SDK client, as the admin, with every node's endpoint.
func (c *Cluster) Client() *api.Client {
	c.t.Helper()
	return c.ClientOf(c.Nodes...)
}

// NodeClient returns an SDK client, as the admin, of node i only.
func (c *Cluster) NodeClient(i int) *api.Client {
	c.t.Helper()
	return c.ClientOf(c.Node(i))
}

// ClientOf returns an SDK client, as the admin, with the endpoints of
// nodes, in that order.
func (c *Cluster) ClientOf(nodes ...*ClusterNode) *api.Client {
	c.t.Helper()
	var endpoints []string
	for _, n := range nodes {
		endpoints = append(endpoints, n.URL)
	}
	cl, err := api.NewClient(api.Config{Endpoints: endpoints, APIKey: c.AdminKey, RootCAs: c.caPool(), Timeout: 10 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// Status asks node n for GET /v1/status with a short deadline.
func (c *Cluster) Status(n *ClusterNode) (*api.StatusResponse, error) {
	cl := c.ClientOf(n)
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cl.Status(ctx)
}

// LeaderNow asks every running node once and returns the one that says
// it is the leader; an error if none or more than one does.
func (c *Cluster) LeaderNow() (*ClusterNode, error) {
	var leaders []*ClusterNode
	var errs []error
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		st, err := c.Status(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
			continue
		}
		if st.Leader {
			leaders = append(leaders, n)
		}
	}
	switch len(leaders) {
	case 1:
		return leaders[0], nil
	case 0:
		return nil, fmt.Errorf("no node says it is the leader (%v)", errors.Join(errs...))
	default:
		var ids []string
		for _, n := range leaders {
			ids = append(ids, n.ID)
		}
		return nil, fmt.Errorf("%d nodes say they are the leader: %s", len(leaders), strings.Join(ids, ", "))
	}
}

// Leader waits up to 15s until exactly one running node says it is the
// leader, and returns it.
func (c *Cluster) Leader() *ClusterNode {
	c.t.Helper()
	var leader *ClusterNode
	var last error
	deadline := time.Now().Add(15 * time.Second)
	for {
		leader, last = c.LeaderNow()
		if last == nil {
			return leader
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no single leader within 15s: %v", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Followers returns the running nodes other than leader.
func (c *Cluster) Followers(leader *ClusterNode) []*ClusterNode {
	var out []*ClusterNode
	for _, n := range c.Nodes {
		if n != leader && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// CLI runs the minkms CLI against node n only, as the admin.
func (c *Cluster) CLI(n *ClusterNode, args ...string) CLIResult {
	c.t.Helper()
	env := append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+n.URL, "MINKMS_CACERT="+c.CA.CertFile,
		"MINKMS_API_KEY="+c.AdminKey.String())
	return runCLI(c.t, env, args...)
}

// clusterMember is one entry of GET /v1/cluster/members.
type clusterMember = api.ClusterMember

type clusterMembers = api.ClusterMembers

// adminRequestText GETs path from node n as the admin and returns the
// body of a 2xx answer as text (Prometheus metrics, say).
func (c *Cluster) adminRequestText(n *ClusterNode, path string, out *string) error {
	hc := c.httpClient(c.AdminKey, 30*time.Second)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(n.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	*out = string(b)
	return nil
}

// adminRequest sends one request as the admin to node n and decodes a 2xx
// answer into out (if not nil). A non-2xx answer is an *api.Error.
func (c *Cluster) adminRequest(n *ClusterNode, method, path string, body, out any) error {
	hc := c.httpClient(c.AdminKey, 30*time.Second)
	defer hc.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, n.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e api.ErrorResponse
		_ = json.Unmarshal(data, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return &api.Error{Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding %q: %w", method, path, data, err)
		}
	}
	return nil
}

// Members asks node n for GET /v1/cluster/members.
func (c *Cluster) Members(n *ClusterNode) ([]clusterMember, error) {
	var m clusterMembers
	if err := c.adminRequest(n, http.MethodGet, "/v1/cluster/members", nil, &m); err != nil {
		return nil, err
	}
	return m.Members, nil
}

// AddMember asks node n to add the node at peerAddr (POST /v1/cluster/members).
func (c *Cluster) AddMember(n *ClusterNode, peerAddr string) (clusterMember, error) {
	var m clusterMember
	err := c.adminRequest(n, http.MethodPost, "/v1/cluster/members", map[string]string{"address": peerAddr}, &m)
	return m, err
}

// RemoveMember asks node n to remove member id (DELETE /v1/cluster/members/{id}).
func (c *Cluster) RemoveMember(n *ClusterNode, id string) error {
	return c.adminRequest(n, http.MethodDelete, "/v1/cluster/members/"+id, nil, nil)
}

// WaitMembers waits until node n lists exactly the voters ids (any order).
func (c *Cluster) WaitMembers(n *ClusterNode, timeout time.Duration, ids ...string) []clusterMember {
	c.t.Helper()
	var members []clusterMember
	var last string
	deadline := time.Now().Add(timeout)
	for {
		var err error
		members, err = c.Members(n)
		if err == nil && sameVoters(members, ids) {
			return members
		}
		last = fmt.Sprintf("%+v (%v)", members, err)
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not list the voters %v within %s; last: %s", n.ID, ids, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sameVoters(members []clusterMember, ids []string) bool {
	if len(members) != len(ids) {
		return false
	}
	want := make(map[string]bool)
	for _, id := range ids {
		want[id] = true
	}
	for _, m := range members {
		if !want[m.ID] || m.Suffrage != "voter" {
			return false
		}
	}
	return true
}

// LogLine returns the first line of log that holds every word
// (case-insensitive), or "".
func LogLine(log string, words ...string) string {
	for line := range strings.Lines(log) {
		lower := strings.ToLower(line)
		all := true
		for _, w := range words {
			if !strings.Contains(lower, strings.ToLower(w)) {
				all = false
				break
			}
		}
		if all {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// LogProblem returns the first WARN or ERROR line of a JSON log that holds
// every word (case-insensitive), or "": what a node says when it refuses
// something is a warning or an error, not a debug line.
func LogProblem(log string, words ...string) string {
	for line := range strings.Lines(log) {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || (rec.Level != "WARN" && rec.Level != "ERROR") {
			continue
		}
		if found := LogLine(line, words...); found != "" {
			return found
		}
	}
	return ""
}

// CountLogLines counts the lines of log that hold every word.
func CountLogLines(log string, words ...string) int {
	count := 0
	for line := range strings.Lines(log) {
		if LogLine(line, words...) != "" {
			count++
		}
	}
	return count
}

// LogOffsets notes where every node's log stands now, for Since.
func (c *Cluster) LogOffsets() map[*ClusterNode]int {
	offs := make(map[*ClusterNode]int)
	for _, n := range c.Nodes {
		offs[n] = n.Log.Len()
	}
	return offs
}

// maxLogDump bounds how much of one node's log goes into the test output;
// the whole log goes to a file in the artifacts directory.
const maxLogDump = 256 << 10

// DumpLogs writes every node's log into the test output (the tail if it
// is long, with the whole log in the artifacts directory).
func (c *Cluster) DumpLogs() {
	for _, n := range c.Nodes {
		log := n.Log.String()
		if len(log) <= maxLogDump {
			c.t.Logf("log of %s (%s, peer %s):\n%s", n.ID, n.Addr, n.PeerAddr, log)
			continue
		}
		path := filepath.Join(artifactsDir(c.t), fmt.Sprintf("%s-%s.log", sanitize(c.t.Name()), n.ID))
		if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
			c.t.Logf("writing %s: %v", path, err)
		}
		c.t.Logf("log of %s (%s, peer %s): %d bytes, all in %s; the last %d:\n%s", n.ID, n.Addr, n.PeerAddr,
			len(log), path, maxLogDump, log[len(log)-maxLogDump:])
	}
}

func sanitize(name string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(name)
}

var (
	artifactsOnce sync.Once
	artifacts     string
	artifactsErr  error
)

// artifactsDir is where files that outlive the test go (logs,
// linearizability visualizations): $MINKMS_ARTIFACTS, else a new
// directory under the system temp dir. Its path is logged.
func artifactsDir(tb testing.TB) string {
	tb.Helper()
	artifactsOnce.Do(func() {
		if dir := os.Getenv("MINKMS_ARTIFACTS"); dir != "" {
			artifacts, artifactsErr = dir, os.MkdirAll(dir, 0o755)
			return
		}
		artifacts, artifactsErr = os.MkdirTemp("", "minkms-artifacts-")
	})
	if artifactsErr != nil {
		tb.Fatalf("artifacts directory: %v", artifactsErr)
	}
	return artifacts
}

// The shared cluster: three nodes formed with bootstrap_expect, started by
// the first test that asks for it and stopped by TestMain. Tests that use
// it do not change its membership nor stop its nodes.
var shared struct {
	once    sync.Once
	cluster *Cluster
	failed  string
	cleanup []func()
	dir     string
}

// SharedCluster returns the shared three-node cluster bound to t, starting
// it on first use. If t fails, every node's log is dumped.
func SharedCluster(t *testing.T) *Cluster {
	t.Helper()
	var started *Cluster
	t.Cleanup(func() {
		if t.Failed() && started != nil {
			started.DumpLogs()
		}
	})
	shared.once.Do(func() {
		shared.failed = "the shared cluster failed to start in " + t.Name()
		dir, err := os.MkdirTemp("", "minkms-shared-cluster-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		c := newCluster(t, dir, 3, ClusterOptions{Raft: FastRaft()}, func(f func()) { shared.cleanup = append(shared.cleanup, f) })
		started = c
		c.Start()
		c.WaitReady(60 * time.Second)
		shared.cluster, shared.failed = c, ""
	})
	if shared.cluster == nil {
		t.Fatal(shared.failed)
	}
	started = shared.cluster.For(t)
	return started
}

// stopSharedCluster stops the shared cluster's processes and removes its
// files; TestMain calls it after every test ran.
func stopSharedCluster() {
	for i := len(shared.cleanup) - 1; i >= 0; i-- {
		shared.cleanup[i]()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

// TestCA is a certificate authority made in the test: ECDSA P-256.
type TestCA struct {
	Cert     *x509.Certificate
	Key      *ecdsa.PrivateKey
	CertFile string
}

// MustNewCA makes a CA and writes its certificate to dir/ca.crt.
func MustNewCA(tb testing.TB, dir, name string) *TestCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	ca := &TestCA{Cert: cert, Key: key, CertFile: filepath.Join(dir, "ca.crt")}
	if err := os.WriteFile(ca.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return ca
}

func randomSerial(tb testing.TB) *big.Int {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatal(err)
	}
	return serial
}

// Leaf is an issued certificate with its key.
type Leaf struct {
	CertPEM, KeyPEM []byte
	Serial          *big.Int
}

// TLSCertificate returns the leaf as a tls.Certificate.
func (l Leaf) TLSCertificate(tb testing.TB) tls.Certificate {
	tb.Helper()
	cert, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// Issue signs a certificate for the IPs, valid for 30 days (beyond the
// 48h of tls.warn_before, so that a test cluster has no expiry warning),
// with the given extended key usages (none: server and client auth, as node
// certificates have).
func (ca *TestCA) Issue(tb testing.TB, ips []string, usages ...x509.ExtKeyUsage) Leaf {
	tb.Helper()
	return ca.issue(tb, ips, 30*24*time.Hour, usages...)
}

// IssueValid is Issue with a validity of its own (from a minute ago).
func (ca *TestCA) IssueValid(tb testing.TB, ips []string, validity time.Duration) Leaf {
	tb.Helper()
	return ca.issue(tb, ips, validity)
}

func (ca *TestCA) issue(tb testing.TB, ips []string, validity time.Duration, usages ...x509.ExtKeyUsage) Leaf {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if len(usages) == 0 {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(tb),
		Subject:      pkix.Name{CommonName: "minkms test " + strings.Join(ips, " ")},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(-time.Minute + validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
	}
	for _, ip := range ips {
		parsed := net.ParseIP(ip)
		if parsed == nil {
			tb.Fatalf("not an IP: %q", ip)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return Leaf{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Serial:  tmpl.SerialNumber,
	}
}

// MustWriteLeaf issues a node certificate for the IPs and writes it to
// dir/<name>.crt and dir/<name>.key (0600).
func (ca *TestCA) MustWriteLeaf(tb testing.TB, dir, name string, ips ...string) (certFile, keyFile string) {
	tb.Helper()
	leaf := ca.Issue(tb, ips)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(keyFile, leaf.KeyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(certFile, leaf.CertPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

// waitForState is waitFor for conditions that can say where they stand:
// on timeout, the last state is in the failure.
func waitForState(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
