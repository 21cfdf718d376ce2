package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// syncBuffer is a bytes.Buffer safe for the supervisor's goroutines.
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

// MustDevCluster writes a development cluster of n nodes whose processes
// are what fake returns instead of minkms; Stop runs at the test's end.
func MustDevCluster(t *testing.T, n int, fake func(n *devNode) *exec.Cmd) (*devCluster, *syncBuffer) {
	t.Helper()
	stderr := new(syncBuffer)
	d, err := newDevCluster(n, devBasePort, devOptions{}, stderr)
	if err != nil {
		t.Fatal(err)
	}
	d.command = fake
	d.stopGrace = 5 * time.Second
	t.Cleanup(func() { d.Stop() })
	return d, stderr
}

func sleeper(*devNode) *exec.Cmd { return exec.Command("sleep", "60") }

// TestDevLayoutBasePort shows what --base-port moves: every port of the
// layout, the steps between them unchanged.
func TestDevLayoutBasePort(t *testing.T) {
	var got []string
	for _, n := range devLayout(3, 8000) {
		got = append(got, n.ID+" "+n.APIAddr+" "+n.PeerAddr)
	}
	want := []string{
		"n1 127.0.0.1:8000 127.0.0.1:8001",
		"n2 127.0.0.1:8010 127.0.0.1:8011",
		"n3 127.0.0.1:8020 127.0.0.1:8021",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := checkDevBasePort(true, 3, 65514, ""); err != nil {
		t.Errorf("the highest base port for 3 nodes: %v", err)
	}
}

func TestDevLayout(t *testing.T) {
	var got []string
	for _, n := range devLayout(5, devBasePort) {
		got = append(got, n.ID+" "+n.APIAddr+" "+n.PeerAddr)
	}
	want := []string{
		"n1 127.0.0.1:7373 127.0.0.1:7374",
		"n2 127.0.0.1:7383 127.0.0.1:7384",
		"n3 127.0.0.1:7393 127.0.0.1:7394",
		"n4 127.0.0.1:7403 127.0.0.1:7404",
		"n5 127.0.0.1:7413 127.0.0.1:7414",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDevClusterFiles checks the files a development cluster starts from:
// the config of each node, the certificates and the secrets' modes.
func TestDevClusterFiles(t *testing.T) {
	d, _ := MustDevCluster(t, 3, sleeper)
	joins := []any{"127.0.0.1:7374", "127.0.0.1:7384", "127.0.0.1:7394"}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, d.CAFile))
	for i, n := range d.Nodes {
		var cfg map[string]any
		if err := yaml.Unmarshal(mustRead(t, n.Config), &cfg); err != nil {
			t.Fatalf("%s: %v", n.Config, err)
		}
		api, peer := fmt.Sprintf("127.0.0.1:%d", 7373+10*i), fmt.Sprintf("127.0.0.1:%d", 7374+10*i)
		rootKey := filepath.Join(d.Dir, "root.key")
		admin := mustAPIKeyIdentity(t, d.APIKey)
		want := map[string]any{
			"version":  "v1",
			"address":  api,
			"data_dir": filepath.Join(d.Dir, n.ID, "data"),
			"root_key": map[string]any{"file": rootKey},
			"admins":   []any{admin},
			"tls": map[string]any{
				"certs": []any{map[string]any{"cert": n.Cert, "key": n.Key}},
				"ca":    d.CAFile,
			},
			"cluster": map[string]any{
				"node_id":          n.ID,
				"advertise":        api,
				"address":          peer,
				"advertise_peer":   peer,
				"bootstrap_expect": 3,
				"join":             joins,
			},
			"log": map[string]any{"level": "info", "format": "text"},
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%s:\n%s\nwant %v", n.ID, mustRead(t, n.Config), want)
		}
		leaf := mustParseCert(t, n.Cert)
		for _, host := range []string{"127.0.0.1", "localhost"} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("%s's certificate for %s: %v", n.ID, host, err)
			}
		}
		assertMode(t, n.Key, 0o600)
		assertMode(t, n.Config, 0o600)
	}
	assertMode(t, filepath.Join(d.Dir, "root.key"), 0o600)
	assertMode(t, filepath.Join(d.Dir, "certs", "ca.key"), 0o600)
	if key := strings.TrimSpace(string(mustRead(t, filepath.Join(d.Dir, "root.key")))); !strings.HasPrefix(key, "r1:") {
		t.Errorf("root key %q", key)
	}
}

func mustAPIKeyIdentity(t *testing.T, text string) string {
	t.Helper()
	key, err := api.ParseAPIKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return key.Identity()
}

// TestDevClusterStop starts fake nodes, prints what a client needs, and
// stops them all: nothing left running, the directory gone.
func TestDevClusterStop(t *testing.T) {
	d, stderr := MustDevCluster(t, 3, sleeper)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	c := &cli{stdout: &out}
	if err := c.printDevClusterInfo(&output{json: true}, d); err != nil {
		t.Fatal(err)
	}
	var doc devClusterJSON
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out.String())
	}
	if want := []string{"https://127.0.0.1:7373", "https://127.0.0.1:7383", "https://127.0.0.1:7393"}; !reflect.DeepEqual(doc.Servers, want) {
		t.Errorf("servers %v", doc.Servers)
	}
	if doc.APIKey != d.APIKey || doc.CAFile != d.CAFile || len(doc.Nodes) != 3 {
		t.Errorf("document %+v", doc)
	}
	for i, n := range doc.Nodes {
		if n.ID != d.Nodes[i].ID || n.URL != doc.Servers[i] || n.PID != d.Nodes[i].PID() || n.PID == 0 || n.Config != d.Nodes[i].Config {
			t.Errorf("node %d: %+v", i, n)
		}
	}

	out.Reset()
	if err := c.printDevClusterInfo(&output{}, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"export MINKMS_SERVER=https://127.0.0.1:7373,https://127.0.0.1:7383,https://127.0.0.1:7393 MINKMS_API_KEY=" + d.APIKey + " MINKMS_CACERT=" + d.CAFile + "\n",
		"minkms cluster members\n",
		fmt.Sprintf("kill %d    # stops n2", d.Nodes[1].PID()),
		"minkms key create my-key",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "export "); n != 1 {
		t.Errorf("%d export lines", n)
	}

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, n := range d.Nodes {
		if !n.exited() || n.cmd.ProcessState == nil {
			t.Errorf("%s still runs", n.ID)
		}
	}
	if _, err := os.Stat(d.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory is still there: %v", err)
	}
	if !strings.Contains(stderr.String(), "stopping n1, n2, n3") || strings.Contains(stderr.String(), "exited") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// TestDevClusterStopKills shows that a node that ignores SIGTERM is killed
// after the grace period.
func TestDevClusterStopKills(t *testing.T) {
	d, stderr := MustDevCluster(t, 3, func(n *devNode) *exec.Cmd {
		if n.ID == "n2" {
			return exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 60`)
		}
		return sleeper(n)
	})
	d.stopGrace = 300 * time.Millisecond
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "n2 | ready") })
	start := time.Now()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "n2 did not stop within 300ms: killed") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Stop took %v", time.Since(start))
	}
	if _, err := os.Stat(d.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory is still there: %v", err)
	}
}

// TestDevClusterNodeExits shows that a node that dies is reported and the
// others keep running, and that Wait ends only when every node is gone.
func TestDevClusterNodeExits(t *testing.T) {
	d, stderr := MustDevCluster(t, 3, sleeper)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if err := d.Nodes[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.Nodes[1].done
	if want := "minkms: node n2 exited: signal: killed; still running: n1, n3\n"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if d.Nodes[0].exited() || d.Nodes[2].exited() {
		t.Error("the other nodes stopped too")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.Wait(ctx); err != nil {
		t.Errorf("Wait with the context ended: %v", err)
	}
	d.Nodes[0].cmd.Process.Kill()
	d.Nodes[2].cmd.Process.Kill()
	if err := d.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "every node") {
		t.Errorf("Wait after every node exited: %v", err)
	}
}

// TestDevClusterWaitReady serves /v1/health/ready with each node's
// certificate in place of the nodes and checks that WaitReady accepts it.
func TestDevClusterWaitReady(t *testing.T) {
	d, _ := MustDevCluster(t, 3, sleeper)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	for _, n := range d.Nodes {
		cert, err := tls.LoadX509KeyPair(n.Cert, n.Key)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/health/ready" {
				http.NotFound(w, r)
			}
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		n.APIAddr = ln.Addr().String()
	}
	if err := d.WaitReady(t.Context(), 10*time.Second); err != nil {
		t.Fatal(err)
	}

	t.Run("Timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		d.Nodes[2].APIAddr = addr // nothing listens there
		err = d.WaitReady(t.Context(), 300*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "node n3 did not answer https://"+addr+"/v1/health/ready within 300ms") {
			t.Errorf("WaitReady: %v", err)
		}
	})
}

// TestDevClusterEarlyExit shows that a node that exits during start-up is
// reported with the end of its output.
func TestDevClusterEarlyExit(t *testing.T) {
	d, _ := MustDevCluster(t, 3, func(n *devNode) *exec.Cmd {
		if n.ID == "n1" {
			return exec.Command("sh", "-c", `echo starting; echo "config.yaml:18: unknown setting \"join\"" >&2; exit 1`)
		}
		return sleeper(n)
	})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	err := d.WaitReady(t.Context(), 30*time.Second)
	if err == nil {
		t.Fatal("WaitReady succeeded")
	}
	for _, want := range []string{"node n1 exited before it answered: exit status 1", "  starting\n", `  config.yaml:18: unknown setting "join"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDevClusterFlags(t *testing.T) {
	setEnv(t, nil)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"NoDev":   {[]string{"server", "--config", "x.yaml", "--nodes", "3"}, "--nodes needs --dev"},
		"Even":    {[]string{"server", "--dev", "--nodes", "4"}, "--nodes 4: use 1, 3 or 5"},
		"Address": {[]string{"server", "--dev", "--nodes", "3", "--address", "127.0.0.1:9000"}, "--address applies to a single development node"},

		"BasePortNoDev":   {[]string{"server", "--config", "x.yaml", "--base-port", "9000"}, "--base-port needs --dev"},
		"BasePortAddress": {[]string{"server", "--dev", "--address", "127.0.0.1:9000", "--base-port", "9000"}, "--base-port and --address exclude each other"},
		"BasePortZero":    {[]string{"server", "--dev", "--base-port", "0"}, "--base-port 0: with 1 node the ports run from 0 to 1; use 1 to 65534"},
		"BasePortHigh":    {[]string{"server", "--dev", "--nodes", "3", "--base-port", "65515"}, "--base-port 65515: with 3 nodes the ports run from 65515 to 65536; use 1 to 65514"},
	} {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runCLI(t, "", tc.args...)
			if code != exitLocal || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
		})
	}
	if got := devLogFlags("debug", "json"); !reflect.DeepEqual(got, []string{"--log-level", "debug", "--log-format", "json"}) {
		t.Errorf("devLogFlags = %v", got)
	}
}

// TestPrefixWriter checks that lines are prefixed whole, also when they
// arrive in pieces, and that the tail keeps the last lines.
func TestPrefixWriter(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	p := &prefixWriter{mu: &mu, w: &out, prefix: "n1 | ", tail: make([]string, 0, 2)}
	fmt.Fprint(p, "one\ntw")
	fmt.Fprint(p, "o\nthree")
	p.flush()
	if want := "n1 | one\nn1 | two\nn1 | three\n"; out.String() != want {
		t.Errorf("wrote %q, want %q", out.String(), want)
	}
	if want := "  two\n  three"; p.Tail() != want {
		t.Errorf("tail %q, want %q", p.Tail(), want)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDevClusterConfigsParse parses each node's config as the node will.
// The cluster formation settings are read by name, so the test compiles
// against any server.ClusterConfig and fails where one is missing.
func TestDevClusterConfigsParse(t *testing.T) {
	d, _ := MustDevCluster(t, 3, sleeper)
	for _, n := range d.Nodes {
		cfg, err := server.ParseConfig(n.Config, mustRead(t, n.Config))
		if err != nil {
			t.Errorf("%s: %v", n.ID, err)
			continue
		}
		c := reflect.ValueOf(cfg.Cluster)
		for name, want := range map[string]any{
			"NodeID":          n.ID,
			"Advertise":       n.APIAddr,
			"Address":         n.PeerAddr,
			"AdvertisePeer":   n.PeerAddr,
			"BootstrapExpect": 3,
			"Join":            []string{"127.0.0.1:7374", "127.0.0.1:7384", "127.0.0.1:7394"},
		} {
			f := c.FieldByName(name)
			if !f.IsValid() {
				t.Fatalf("server.ClusterConfig has no field %s", name)
			}
			if got := f.Interface(); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: cluster %s = %v, want %v", n.ID, name, got, want)
			}
		}
		if cfg.Address != n.APIAddr || cfg.DataDir != n.DataDir || cfg.RootKey.File != filepath.Join(d.Dir, "root.key") {
			t.Errorf("%s: address %s, data dir %s, root key %s", n.ID, cfg.Address, cfg.DataDir, cfg.RootKey.File)
		}
	}
}
