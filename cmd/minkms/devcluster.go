package main

// minkms server --dev --nodes N: a local development cluster of N real
// minkms processes, supervised by this one. The supervisor writes the files
// a production operator would (a PKI, a root key file, one config file per
// node), starts `minkms server --config FILE` for each node, forwards their
// output, and stops them all when it is stopped.

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
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/internal/devdir"
	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/tlsmgr/pki"
)

// Development cluster defaults.
const (
	devBasePort       = 7373 // n1's API port; n1's peer port is one above, each next node ten above
	devPortStep       = 10   // between the ports of consecutive nodes
	devCertValidity   = 30 * 24 * time.Hour
	devReadyTimeout   = 60 * time.Second // for every node to answer /v1/health/ready
	devStopGrace      = 20 * time.Second // SIGTERM, then SIGKILL: room for a leadership transfer
	devTailLines      = 20               // lines of a node's output kept for an early-exit report
	devWaitDelay      = 5 * time.Second  // after a node exits, how long its output may still be read
	devReadyPollEvery = 100 * time.Millisecond
)

// devClusterSizes are the node counts --nodes accepts besides 1: odd, so
// that every node added also adds a failure the cluster survives.
var devClusterSizes = []int{3, 5}

// devNode is one node of a development cluster: its addresses and files,
// and, once started, its process.
type devNode struct {
	ID       string
	APIAddr  string // 127.0.0.1:7373
	PeerAddr string // 127.0.0.1:7374
	Config   string // its config file
	DataDir  string
	Cert     string
	Key      string

	cmd  *exec.Cmd
	out  *prefixWriter
	done chan struct{} // closed once the process has exited and err is set
	err  error
}

// URL is the node's API URL.
func (n *devNode) URL() string { return "https://" + n.APIAddr }

// PID is the node's process id, 0 before it started.
func (n *devNode) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// exited reports whether the node's process has ended.
func (n *devNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// devLayout returns the nodes of an n-node cluster on 127.0.0.1: ids n1..nN,
// the API of node i on base+10*i and its peer port one above.
func devLayout(n, base int) []*devNode {
	nodes := make([]*devNode, n)
	for i := range nodes {
		api := base + devPortStep*i
		nodes[i] = &devNode{
			ID:       "n" + strconv.Itoa(i+1),
			APIAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(api)),
			PeerAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(api+1)),
		}
	}
	return nodes
}

// devCluster supervises a development cluster. NewDevCluster writes its
// files, Start starts the nodes, WaitReady waits until each answers, Wait
// blocks until the context ends or every node has exited, and Stop stops
// what runs and removes the files. A node that exits is reported and the
// others keep running.
type devCluster struct {
	Dir    string      // the temporary directory that holds everything; Stop removes it
	owned  *devdir.Dir // Dir, locked as this process's (a later start removes it if this one is killed)
	CAFile string
	APIKey string // the cluster admin's API key, k1:...
	Nodes  []*devNode
	opts   devOptions

	// command builds the process of a node; tests replace it.
	command func(n *devNode) *exec.Cmd
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace time.Duration

	stderr   io.Writer
	mu       sync.Mutex // serialises writes to stderr, keeps stopping consistent
	stopping bool
	exits    chan *devNode // one value per node that exited
	release  chan struct{} // closed by Stop: the thread that started the nodes may end
	stopOnce sync.Once
}

// newDevCluster writes the files of an n-node development cluster whose
// first API port is base into a new temporary directory: a CA and one
// certificate per node (for 127.0.0.1 and localhost), a root key file
// (0600), and one config file per node naming an admin API key. Output of
// the nodes and reports of the supervisor go to stderr.
func newDevCluster(n, base int, opts devOptions, stderr io.Writer) (*devCluster, error) {
	owned, err := devdir.Create(devdir.Prefix + "cluster-")
	if err != nil {
		return nil, fmt.Errorf("creating the dev cluster directory: %w", err)
	}
	dir := owned.Path
	d := &devCluster{
		Dir:       dir,
		owned:     owned,
		Nodes:     devLayout(n, base),
		opts:      opts,
		stopGrace: devStopGrace,
		stderr:    stderr,
		exits:     make(chan *devNode, n),
		release:   make(chan struct{}),
	}
	exe, err := os.Executable()
	if err != nil {
		owned.Remove()
		return nil, fmt.Errorf("finding the minkms executable: %w", err)
	}
	d.command = func(n *devNode) *exec.Cmd { return exec.Command(exe, "server", "--config", n.Config) }
	if err := d.writeFiles(); err != nil {
		owned.Remove()
		return nil, err
	}
	return d, nil
}

// writeFiles writes the PKI, the root key and the config files.
func (d *devCluster) writeFiles() error {
	certs := filepath.Join(d.Dir, "certs")
	ca, err := pki.NewCA(pki.CAOptions{Name: "minkms development CA", Validity: devCertValidity + time.Hour})
	if err != nil {
		return fmt.Errorf("creating the dev CA: %w", err)
	}
	d.CAFile = filepath.Join(certs, "ca.crt")
	if err := ca.WriteFiles(d.CAFile, filepath.Join(certs, "ca.key"), false); err != nil {
		return err
	}
	for _, n := range d.Nodes {
		leaf, err := ca.Issue(pki.LeafOptions{
			Hosts:    []string{"localhost"},
			IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
			Validity: devCertValidity,
		})
		if err != nil {
			return fmt.Errorf("issuing the certificate of %s: %w", n.ID, err)
		}
		n.Cert, n.Key = filepath.Join(certs, n.ID+".crt"), filepath.Join(certs, n.ID+".key")
		if err := leaf.WriteFiles(n.Cert, n.Key, false); err != nil {
			return err
		}
	}

	rootKey := filepath.Join(d.Dir, "root.key")
	if err := os.WriteFile(rootKey, []byte(server.GenerateRootKey()+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the root key: %w", err)
	}
	admin, err := api.GenerateAPIKey()
	if err != nil {
		return fmt.Errorf("generating the admin API key: %w", err)
	}
	d.APIKey = admin.String()

	join := make([]string, len(d.Nodes))
	for i, n := range d.Nodes {
		join[i] = n.PeerAddr
	}
	for _, n := range d.Nodes {
		nodeDir := filepath.Join(d.Dir, n.ID)
		if err := os.Mkdir(nodeDir, 0o700); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", n.ID, err)
		}
		n.DataDir = filepath.Join(nodeDir, "data")
		n.Config = filepath.Join(nodeDir, "config.yaml")
		var cfg devConfigFile
		cfg.Version = server.ConfigVersion
		cfg.Address = n.APIAddr
		cfg.DataDir = n.DataDir
		cfg.RootKey.File = rootKey
		cfg.Admins = []string{admin.Identity()}
		cfg.TLS.Certs = []devCertPair{{Cert: n.Cert, Key: n.Key}}
		cfg.TLS.CA = d.CAFile
		cfg.Cluster = devClusterConfig{
			NodeID:          n.ID,
			Advertise:       n.APIAddr,
			Address:         n.PeerAddr,
			AdvertisePeer:   n.PeerAddr,
			BootstrapExpect: len(d.Nodes),
			Join:            join,
		}
		cfg.Log.Level = "info"
		cfg.Log.Format = "text"
		if d.opts.Bench {
			cfg.Log.AuditFile = filepath.Join(nodeDir, "audit.log")
			cfg.Debug = &devDebugConfig{PProf: true}
		}
		data, err := yaml.Marshal(&cfg)
		if err != nil {
			return fmt.Errorf("encoding the config of %s: %w", n.ID, err)
		}
		header := fmt.Sprintf("# minkms development cluster, node %s of %d (written by minkms server --dev --nodes %d)\n",
			n.ID, len(d.Nodes), len(d.Nodes))
		if err := os.WriteFile(n.Config, append([]byte(header), data...), 0o600); err != nil {
			return fmt.Errorf("writing the config of %s: %w", n.ID, err)
		}
	}
	return nil
}

// devOptions are the settings of a development cluster beyond its size
// and ports.
type devOptions struct {
	// Bench configures the nodes as a benchmark wants them: like a
	// production node, each writes its audit trail to a file (audit.log in
	// its directory), and each serves /debug/pprof/* to the admin so that
	// a CPU profile can be taken under load (make bench).
	Bench bool
}

type devDebugConfig struct {
	PProf bool `yaml:"pprof"`
}

// devConfigFile is the part of the node config file schema (see
// server.ParseConfig) that a development node sets, in the file's order.
type devConfigFile struct {
	Version string `yaml:"version"`
	Address string `yaml:"address"`
	DataDir string `yaml:"data_dir"`
	RootKey struct {
		File string `yaml:"file"`
	} `yaml:"root_key"`
	Admins []string `yaml:"admins"`
	TLS    struct {
		Certs []devCertPair `yaml:"certs"`
		CA    string        `yaml:"ca"`
	} `yaml:"tls"`
	Cluster devClusterConfig `yaml:"cluster"`
	Log     struct {
		Level     string `yaml:"level"`
		Format    string `yaml:"format"`
		AuditFile string `yaml:"audit_file,omitempty"`
	} `yaml:"log"`
	Debug *devDebugConfig `yaml:"debug,omitempty"`
}

type devCertPair struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type devClusterConfig struct {
	NodeID          string   `yaml:"node_id"`
	Advertise       string   `yaml:"advertise"`
	Address         string   `yaml:"address"`
	AdvertisePeer   string   `yaml:"advertise_peer"`
	BootstrapExpect int      `yaml:"bootstrap_expect"`
	Join            []string `yaml:"join,flow"`
}

// checkPorts fails early, with a clear message, when a port of the layout
// is taken (most often by another development cluster or node).
func (d *devCluster) checkPorts() error {
	for _, n := range d.Nodes {
		for _, addr := range []string{n.APIAddr, n.PeerAddr} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s cannot use %s: %w (is another minkms development node or cluster running?)", n.ID, addr, err)
			}
			ln.Close()
		}
	}
	return nil
}

// Start starts every node's process. The processes are started from one
// OS thread that stays locked until Stop: on Linux a child's parent-death
// signal follows the thread that started it, not the process, so the
// thread must not end while the nodes run.
func (d *devCluster) Start() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after Stop.
		var err error
		for _, n := range d.Nodes {
			if err = d.startNode(n); err != nil {
				break
			}
		}
		started <- err
		<-d.release
	}()
	return <-started
}

func (d *devCluster) startNode(n *devNode) error {
	cmd := d.command(n)
	n.out = &prefixWriter{mu: &d.mu, w: d.stderr, prefix: n.ID + " | ", tail: make([]string, 0, devTailLines)}
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = devWaitDelay
	d.mu.Lock() // watch reads the other nodes' fields
	defer d.mu.Unlock()
	n.cmd, n.done = cmd, make(chan struct{})
	if err := cmd.Start(); err != nil {
		n.err = err
		close(n.done)
		return fmt.Errorf("starting %s: %w", n.ID, err)
	}
	go d.watch(n)
	return nil
}

// watch waits for a node's process to end and reports it, unless the
// cluster is being stopped.
func (d *devCluster) watch(n *devNode) {
	err := n.cmd.Wait()
	n.out.flush()
	if err == nil {
		err = errors.New("exit status 0")
	}
	n.err = err
	d.mu.Lock()
	if !d.stopping {
		var running []string
		for _, o := range d.Nodes {
			if o != n && o.done != nil && !o.exited() {
				running = append(running, o.ID)
			}
		}
		msg := fmt.Sprintf("node %s exited: %v", n.ID, err)
		if len(running) > 0 {
			msg += "; still running: " + strings.Join(running, ", ")
		}
		fmt.Fprintf(d.stderr, "minkms: %s\n", msg)
	}
	d.mu.Unlock()
	close(n.done)
	d.exits <- n
}

// WaitReady waits until every node answers GET /v1/health/ready (it is in
// the cluster, knows the leader and has caught up), or one
// exits first (the error holds the end of its output), or ctx ends, or
// timeout passes.
func (d *devCluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(d.CAFile)
	if err != nil {
		return fmt.Errorf("reading the dev CA: %w", err)
	}
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	defer client.CloseIdleConnections()

	tick := time.NewTicker(devReadyPollEvery)
	defer tick.Stop()
	for _, n := range d.Nodes {
		var last error
		for {
			if n.exited() {
				return fmt.Errorf("node %s exited before it answered: %v\nits last output:\n%s", n.ID, n.err, n.out.Tail())
			}
			if last = probeReady(ctx, client, n.URL()); last == nil {
				break
			}
			select {
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("node %s did not answer %s/v1/health/ready within %v: %v\nits last output:\n%s",
						n.ID, n.URL(), timeout, last, n.out.Tail())
				}
				return ctx.Err()
			case <-n.done:
			case <-tick.C:
			}
		}
	}
	return nil
}

func probeReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Wait blocks until ctx ends (nil) or every node has exited (an error).
// It does not stop anything; call Stop.
func (d *devCluster) Wait(ctx context.Context) error {
	left := 0
	for _, n := range d.Nodes {
		if n.done != nil && !n.exited() {
			left++
		}
	}
	for left > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-d.exits:
			left--
		}
	}
	return errors.New("every node of the development cluster exited")
}

// Stop stops every running node, gracefully first: SIGTERM, then, for any
// still running after the grace period, SIGKILL. Then it removes the
// cluster's directory. It may be called more than once.
func (d *devCluster) Stop() error {
	var err error
	d.stopOnce.Do(func() { err = d.stop() })
	return err
}

func (d *devCluster) stop() error {
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	defer close(d.release)

	var running []*devNode
	for _, n := range d.Nodes {
		if n.done != nil && !n.exited() {
			running = append(running, n)
			if err := terminate(n.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
				n.cmd.Process.Kill()
			}
		}
	}
	if len(running) > 0 {
		d.report("stopping %s (SIGTERM; SIGKILL after %v)", nodeIDs(running), d.stopGrace)
	}
	grace := time.NewTimer(d.stopGrace)
	defer grace.Stop()
	for _, n := range running {
		select {
		case <-n.done:
			continue
		case <-grace.C:
		}
		var killed []*devNode
		for _, m := range running {
			if !m.exited() {
				m.cmd.Process.Kill()
				killed = append(killed, m)
			}
		}
		d.report("%s did not stop within %v: killed", nodeIDs(killed), d.stopGrace)
		break
	}
	for _, n := range running {
		<-n.done
	}
	if err := d.owned.Remove(); err != nil {
		return fmt.Errorf("removing the dev cluster directory: %w", err)
	}
	return nil
}

func (d *devCluster) report(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.stderr, "minkms: "+format+"\n", args...)
}

func nodeIDs(nodes []*devNode) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return strings.Join(ids, ", ")
}

// terminate asks a process to stop gracefully.
func terminate(p *os.Process) error {
	if runtime.GOOS == "windows" {
		return p.Kill() // no SIGTERM there
	}
	return p.Signal(syscall.SIGTERM)
}

// prefixWriter writes a node's output line by line, each prefixed with
// the node id, and keeps its last lines for a report. Writes of all nodes
// share one mutex, so lines never interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte // an incomplete last line
	tail   []string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		p.line(string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// line writes one line; p.mu is held.
func (p *prefixWriter) line(s string) {
	fmt.Fprintf(p.w, "%s%s\n", p.prefix, s)
	if len(p.tail) == cap(p.tail) {
		p.tail = append(p.tail[:0], p.tail[1:]...)
	}
	p.tail = append(p.tail, s)
}

// flush writes an incomplete last line.
func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.line(string(p.buf))
		p.buf = nil
	}
}

// Tail returns the last lines written, each indented.
func (p *prefixWriter) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(p.tail, "\n  ")
}

// runDevCluster runs `minkms server --dev --nodes n` until ctx ends: it
// writes and starts the cluster, prints how to use it once every node
// answers, and stops it all at the end.
func (c *cli) runDevCluster(ctx context.Context, n, basePort int, opts devOptions, out *output, logFlags []string) error {
	d, err := newDevCluster(n, basePort, opts, c.stderr)
	if err != nil {
		return err
	}
	defer d.Stop()
	if err := d.checkPorts(); err != nil {
		return err
	}
	if len(logFlags) > 0 {
		build := d.command
		d.command = func(n *devNode) *exec.Cmd {
			cmd := build(n)
			cmd.Args = append(cmd.Args, logFlags...)
			return cmd
		}
	}
	if err := d.Start(); err != nil {
		return err
	}
	if err := d.WaitReady(ctx, devReadyTimeout); err != nil {
		if ctx.Err() != nil {
			return nil // stopped during start-up
		}
		return err
	}
	if err := c.printDevClusterInfo(out, d); err != nil {
		return err
	}
	if err := d.Wait(ctx); err != nil {
		return err
	}
	return d.Stop()
}

// devClusterJSON is what server --dev --nodes N --json prints.
type devClusterJSON struct {
	Servers []string         `json:"servers"`
	APIKey  string           `json:"api_key"`
	CAFile  string           `json:"ca_file"`
	Nodes   []devClusterNode `json:"nodes"`
}

type devClusterNode struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	PID    int    `json:"pid"`
	Config string `json:"config"`
}

func (c *cli) printDevClusterInfo(out *output, d *devCluster) error {
	doc := devClusterJSON{APIKey: d.APIKey, CAFile: d.CAFile}
	for _, n := range d.Nodes {
		doc.Servers = append(doc.Servers, n.URL())
		doc.Nodes = append(doc.Nodes, devClusterNode{ID: n.ID, URL: n.URL(), PID: n.PID(), Config: n.Config})
	}
	if out.json {
		return writeJSON(c.stdout, doc)
	}
	s := styleFor(c.stdout)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", s.bold(fmt.Sprintf("minkms development cluster (%d nodes)", len(d.Nodes))))
	t := newTable(&b)
	for _, n := range d.Nodes {
		t.row("  "+n.ID, n.URL(), "pid "+strconv.Itoa(n.PID()), "peer "+n.PeerAddr)
	}
	t.flush()
	fmt.Fprintf(&b, "\n  API key:  %s  (cluster admin)\n", d.APIKey)
	fmt.Fprintf(&b, "  CA file:  %s\n\n", d.CAFile)
	fmt.Fprintf(&b, "Its state is temporary and gone when it stops; Ctrl-C stops every node. To use it from another shell:\n\n")
	fmt.Fprintf(&b, "  export %s=%s %s=%s %s=%s\n\n", envServer, strings.Join(doc.Servers, ","), envAPIKey, d.APIKey, envCACert, d.CAFile)
	victim := d.Nodes[1]
	fmt.Fprintf(&b, "Then try:\n\n")
	fmt.Fprintf(&b, "  minkms key create my-key && minkms key encrypt my-key 'hello world'\n")
	fmt.Fprintf(&b, "  minkms cluster members\n")
	fmt.Fprintf(&b, "  kill %d    # stops %s; the other nodes keep serving\n\n", victim.PID(), victim.ID)
	_, err := io.WriteString(c.stdout, b.String())
	return err
}

// checkDevNodes checks --nodes against the other flags of server.
func checkDevNodes(dev bool, nodes int, address string) error {
	switch {
	case !dev:
		return errors.New("--nodes needs --dev; the nodes of a real cluster each run with their own --config")
	case nodes == 1:
		return nil
	case !slices.Contains(devClusterSizes, nodes):
		return fmt.Errorf("--nodes %d: use 1, 3 or 5 (an even count survives no more failures than one node fewer)", nodes)
	case address != "":
		return errors.New("--address applies to a single development node; a cluster uses 127.0.0.1:7373, :7383, ... (--base-port moves them)")
	}
	return nil
}

// checkDevBasePort checks --base-port against the other flags of server:
// every port of the layout must be a valid one.
func checkDevBasePort(dev bool, nodes, base int, address string) error {
	last := base + devPortStep*(max(nodes, 1)-1) + 1 // the last node's peer port
	switch {
	case !dev:
		return errors.New("--base-port needs --dev; a node's ports are in its config file")
	case address != "":
		return errors.New("--base-port and --address exclude each other: --address sets host and port of a single development node, --base-port the ports on 127.0.0.1")
	case base < 1 || last > 65535:
		count := "1 node"
		if nodes > 1 {
			count = strconv.Itoa(nodes) + " nodes"
		}
		return fmt.Errorf("--base-port %d: with %s the ports run from %d to %d; use 1 to %d", base, count, base, last, base-(last-65535))
	}
	return nil
}

// devLogFlags passes --log-level and --log-format on to the nodes.
func devLogFlags(level, format string) []string {
	var flags []string
	if level != "" {
		flags = append(flags, "--log-level", level)
	}
	if format != "" {
		flags = append(flags, "--log-format", format)
	}
	return flags
}
