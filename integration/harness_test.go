package integration_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/tlsmgr"
)

// binary is the minkms binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minkms-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "minkms")
	build := exec.Command("go", "build", "-o", binary, "github.com/minkms/minkms/cmd/minkms")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building minkms:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	stopSharedCluster()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len returns how many bytes were written so far: an offset for Since.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Since returns what was written after offset (from Len).
func (b *syncBuffer) Since(offset int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if offset > b.buf.Len() {
		offset = b.buf.Len()
	}
	return string(b.buf.Bytes()[offset:])
}

// Node is one minkms server process and everything needed to talk to it.
type Node struct {
	t        testing.TB
	Dir      string // holds config, certificates, root key and data
	DataDir  string
	Config   string // path of the config file
	Addr     string // host:port of the API listener
	URL      string
	CAFile   string
	PKI      tlsmgr.DevPKI
	AdminKey *api.APIKey
	RootKey  string
	Log      *syncBuffer

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NodeOptions change how a node is set up.
type NodeOptions struct {
	ExtraConfig string // appended to the YAML config
}

// MustNewNode prepares a node's files (PKI, root key, config) without starting it.
func MustNewNode(tb testing.TB, opts NodeOptions) *Node {
	tb.Helper()
	dir := tb.TempDir()
	pki, err := tlsmgr.WriteDevPKI(filepath.Join(dir, "certs"), []string{"127.0.0.1", "localhost"}, 30*24*time.Hour)
	if err != nil {
		tb.Fatalf("writing PKI: %v", err)
	}
	admin, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatal(err)
	}
	n := &Node{
		t: tb, Dir: dir, DataDir: filepath.Join(dir, "data"), Config: filepath.Join(dir, "minkms.yaml"),
		Addr: freeAddr(tb), CAFile: pki.CACert, PKI: pki, AdminKey: admin, RootKey: server.GenerateRootKey(),
	}
	n.URL = "https://" + n.Addr
	rootKeyFile := filepath.Join(dir, "root.key")
	if err := os.WriteFile(rootKeyFile, []byte(n.RootKey+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: v1
address: %s
data_dir: %s
root_key:
  file: %s
admins:
  - %s
tls:
  certs:
    - cert: %s
      key: %s
  ca: %s
cluster:
  node_id: n1
  advertise: %s
  address: %s
  bootstrap: true
log:
  level: debug
  format: json
%s`, n.Addr, n.DataDir, rootKeyFile, admin.Identity(), pki.Cert, pki.Key, pki.CACert, n.Addr, freeAddr(tb), opts.ExtraConfig)
	if err := os.WriteFile(n.Config, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return n
}

// MustStartNode prepares and starts a node and waits until it is ready.
func MustStartNode(tb testing.TB, opts NodeOptions) *Node {
	tb.Helper()
	n := MustNewNode(tb, opts)
	n.MustStart()
	return n
}

// Start starts the server process; it does not wait for readiness.
func (n *Node) Start() {
	n.t.Helper()
	n.Log = &syncBuffer{}
	n.cmd = exec.Command(binary, "server", "--config", n.Config)
	n.cmd.Stdout, n.cmd.Stderr = n.Log, n.Log
	n.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("starting minkms: %v", err)
	}
	n.done = make(chan struct{})
	go func() { n.err = n.cmd.Wait(); close(n.done) }()
	n.t.Cleanup(func() {
		n.Stop()
		if n.t.Failed() {
			n.t.Logf("log of %s:\n%s", n.Addr, n.Log.String())
		}
	})
}

// MustStart starts the node and waits until it answers ready.
func (n *Node) MustStart() {
	n.t.Helper()
	n.Start()
	if err := n.WaitReady(30 * time.Second); err != nil {
		n.t.Fatalf("node %s not ready: %v\nlog:\n%s", n.Addr, err, n.Log.String())
	}
}

// WaitReady polls /v1/health/ready until it answers 200, the process exits or the deadline passes.
func (n *Node) WaitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig(nil)}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.done:
			return fmt.Errorf("process exited: %v", n.err)
		default:
		}
		resp, err := client.Get(n.URL + "/v1/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("deadline passed")
}

// Exited waits up to timeout for the process to exit and returns its error.
func (n *Node) Exited(timeout time.Duration) (exited bool, err error) {
	select {
	case <-n.done:
		return true, n.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Stop asks the process to shut down (SIGTERM) and kills it if it does not within 15s.
func (n *Node) Stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Signal sends sig to the server process.
func (n *Node) Signal(sig os.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatal(err)
	}
}

func (n *Node) caPool() *x509.CertPool {
	pem, err := os.ReadFile(n.CAFile)
	if err != nil {
		n.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		n.t.Fatal("no CA certificate in", n.CAFile)
	}
	return pool
}

func (n *Node) tlsConfig(key *api.APIKey) *tls.Config {
	cfg := &tls.Config{RootCAs: n.caPool(), MinVersion: tls.VersionTLS12}
	if key != nil {
		cert, err := key.Certificate()
		if err != nil {
			n.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// Client returns an SDK client of the node that authenticates with key.
func (n *Node) Client(key *api.APIKey) *api.Client {
	n.t.Helper()
	c, err := api.NewClient(api.Config{Endpoints: []string{n.URL}, APIKey: key, RootCAs: n.caPool()})
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

// CLIResult is the outcome of one CLI run.
type CLIResult struct {
	Stdout, Stderr string
	Code           int
}

// CLI runs the minkms CLI against the node as the identity of key.
func (n *Node) CLI(key *api.APIKey, args ...string) CLIResult {
	n.t.Helper()
	env := append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+n.URL, "MINKMS_CACERT="+n.CAFile)
	if key != nil {
		env = append(env, "MINKMS_API_KEY="+key.String())
	}
	return runCLI(n.t, env, args...)
}

func runCLI(tb testing.TB, env []string, args ...string) CLIResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := CLIResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		tb.Fatalf("running minkms %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// MustCLI runs the CLI and fails the test unless it exits 0; it returns stdout.
func (n *Node) MustCLI(key *api.APIKey, args ...string) string {
	n.t.Helper()
	res := n.CLI(key, args...)
	if res.Code != 0 {
		n.t.Fatalf("minkms %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
