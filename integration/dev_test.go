package integration_test

import (
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestDevServer starts `minkms server --dev` as `make run` does and uses
// exactly what it prints — URL, admin API key, CA file — to work with it;
// when it stops, its temporary state is gone.
func TestDevServer(t *testing.T) {
	addr := freeAddr(t)
	out := &syncBuffer{}
	cmd := exec.Command(binary, "server", "--dev", "--address", addr)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	exportRE := regexp.MustCompile(`export MINKMS_SERVER=(\S+) MINKMS_API_KEY=(\S+) MINKMS_CACERT=(\S+)`)
	var m []string
	waitFor(t, 30*time.Second, "the development node to print its export line", func() bool {
		m = exportRE.FindStringSubmatch(out.String())
		return m != nil
	})
	url, apiKey, caFile := m[1], m[2], m[3]
	if url != "https://"+addr {
		t.Fatalf("printed URL %s, want https://%s", url, addr)
	}
	if !strings.Contains(out.String(), "API key:") || !strings.Contains(out.String(), "CA file:") {
		t.Fatalf("dev output lacks the API key or CA file lines:\n%s", out.String())
	}
	env := append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+url, "MINKMS_API_KEY="+apiKey, "MINKMS_CACERT="+caFile)
	var res CLIResult
	waitFor(t, 30*time.Second, "the development node to accept a key", func() bool {
		res = runCLI(t, env, "key", "create", "dev-key")
		return res.Code == 0
	})
	ct := strings.TrimSpace(runCLI(t, env, "key", "encrypt", "dev-key", "hi").Stdout)
	if got := runCLI(t, env, "key", "decrypt", "dev-key", ct); got.Code != 0 || strings.TrimSpace(got.Stdout) != "hi" {
		t.Fatalf("decrypt on the dev node: %+v", got)
	}
	if _, err := api.ParseAPIKey(apiKey); err != nil {
		t.Fatalf("printed API key does not parse: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev node exited with %v after SIGINT\n%s", err, out.String())
		}
		done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("dev node did not stop on SIGINT")
	}
	if _, err := os.Stat(caFile); !os.IsNotExist(err) {
		t.Fatalf("dev node left its temporary directory behind (%s: %v)", caFile, err)
	}
}

// devClusterDoc is what `minkms server --dev --nodes 3 --json` prints.
type devClusterDoc struct {
	Servers []string `json:"servers"`
	APIKey  string   `json:"api_key"`
	CAFile  string   `json:"ca_file"`
	Nodes   []struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		PID    int    `json:"pid"`
		Config string `json:"config"`
	} `json:"nodes"`
}

// TestDevCluster runs `minkms server --dev --nodes 3` as `make run` does
// (on free ports through --base-port) and uses what it prints: the three
// nodes become ready, a key created through one node encrypts through the
// others, a SIGKILLed node (the leader) leaves the two others serving, and
// SIGTERM to the supervisor ends every node and removes its directory.
func TestDevCluster(t *testing.T) {
	base := freeDevBasePort(t, 3)
	stderr := &syncBuffer{}
	cmd := exec.Command(binary, "server", "--dev", "--nodes", "3", "--base-port", strconv.Itoa(base), "--json")
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once cmd.Wait returned waitErr
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	var doc devClusterDoc
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill() // the nodes follow it (parent-death signal)
			<-exited
		}
		for _, n := range doc.Nodes {
			syscall.Kill(n.PID, syscall.SIGKILL) // gone already unless the test failed
		}
		if t.Failed() {
			t.Logf("supervisor's standard error:\n%s", stderr)
		}
	})

	decoded := make(chan error, 1)
	go func() { decoded <- json.NewDecoder(stdout).Decode(&doc) }()
	select {
	case err := <-decoded:
		if err != nil {
			t.Fatalf("the supervisor printed no JSON document: %v", err)
		}
	case <-exited:
		t.Fatalf("the supervisor exited before it printed its document: %v", waitErr)
	case <-time.After(60 * time.Second):
		t.Fatal("no document from the supervisor within 60s")
	}
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf("https://127.0.0.1:%d", base+10*i))
	}
	if !reflect.DeepEqual(doc.Servers, want) || len(doc.Nodes) != 3 || doc.APIKey == "" || doc.CAFile == "" {
		t.Fatalf("document %+v, want servers %v", doc, want)
	}
	dir := filepath.Dir(filepath.Dir(doc.CAFile)) // DIR/certs/ca.crt
	for i, n := range doc.Nodes {
		if n.ID != fmt.Sprintf("n%d", i+1) || n.URL != want[i] || n.PID <= 0 || !strings.HasPrefix(n.Config, dir+string(filepath.Separator)) {
			t.Fatalf("node %d in the document: %+v (directory %s)", i, n, dir)
		}
	}

	key, err := api.ParseAPIKey(doc.APIKey)
	if err != nil {
		t.Fatalf("the printed API key: %v", err)
	}
	caPEM, err := os.ReadFile(doc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", doc.CAFile)
	}
	client := func(endpoints ...string) *api.Client {
		c, err := api.NewClient(api.Config{Endpoints: endpoints, APIKey: key, RootCAs: roots, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer probe.CloseIdleConnections()
	for _, url := range doc.Servers {
		waitFor(t, 30*time.Second, url+"/v1/health/ready to answer 200", func() bool {
			resp, err := probe.Get(url + "/v1/health/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := client(doc.Servers[0]).CreateKey(ctx, "dev-cluster-key"); err != nil {
		t.Fatalf("creating a key through n1: %v", err)
	}
	for _, url := range doc.Servers[1:] {
		ct, err := client(url).Encrypt(ctx, "dev-cluster-key", []byte("through "+url), nil)
		if err != nil {
			t.Fatalf("encrypting through %s right after the create on n1: %v", url, err)
		}
		if pt, err := client(doc.Servers[0]).Decrypt(ctx, "dev-cluster-key", ct, nil); err != nil || string(pt) != "through "+url {
			t.Fatalf("decrypting on n1 what %s encrypted: %q, %v", url, pt, err)
		}
	}

	// Kill the leader: the hardest node to lose.
	victim := -1
	waitFor(t, 10*time.Second, "a node to say it is the leader", func() bool {
		for i, url := range doc.Servers {
			if st, err := client(url).Status(ctx); err == nil && st.Leader {
				victim = i
				return true
			}
		}
		return false
	})
	dead := doc.Nodes[victim]
	if err := syscall.Kill(dead.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("killing %s (pid %d): %v", dead.ID, dead.PID, err)
	}
	waitFor(t, 10*time.Second, dead.ID+"'s process to be gone", func() bool { return !pidAlive(dead.PID) })
	waitFor(t, 10*time.Second, "the supervisor to report "+dead.ID+"'s exit", func() bool {
		return strings.Contains(stderr.String(), "minkms: node "+dead.ID+" exited: signal: killed; still running: ")
	})
	var alive []string
	for i, url := range doc.Servers {
		if i != victim {
			alive = append(alive, url)
		}
	}

	all := client(doc.Servers...)
	killed := time.Now()
	createEventually(ctx, t, all, "after-the-kill")
	t.Logf("a create succeeded %v after %s, the leader, was killed", time.Since(killed).Round(time.Millisecond), dead.ID)
	for _, url := range alive {
		for _, name := range []string{"dev-cluster-key", "after-the-kill"} {
			if _, err := client(url).Encrypt(ctx, name, []byte("still serving"), nil); err != nil {
				t.Fatalf("encrypting with %s through %s after %s was killed: %v", name, url, dead.ID, err)
			}
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("the supervisor exited with %v after SIGTERM", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the supervisor did not stop within 30s of SIGTERM")
	}
	for _, n := range doc.Nodes {
		if pidAlive(n.PID) {
			t.Errorf("%s (pid %d) still runs after the supervisor stopped", n.ID, n.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the supervisor left its directory %s behind: %v", dir, err)
	}
	if !strings.Contains(stderr.String(), "minkms: stopping ") {
		t.Errorf("the supervisor did not say it stops the nodes")
	}
}

// createEventually creates a key through c, trying again while the
// cluster has no leader. An outcome-unknown answer is resolved as the SDK
// documents it: read before writing again.
func createEventually(ctx context.Context, t *testing.T, c *api.Client, name string) {
	t.Helper()
	var last error
	waitFor(t, 15*time.Second, "creating "+name+" to succeed", func() bool {
		last = c.CreateKey(ctx, name)
		switch {
		case last == nil:
			return true
		case errors.Is(last, api.ErrOutcomeUnknown):
			_, err := c.DescribeKey(ctx, name)
			return err == nil
		case errors.Is(last, api.ErrNoLeader), errors.Is(last, api.ErrOverloaded):
			return false
		}
		t.Fatalf("creating %s: %v (neither retryable nor outcome unknown)", name, last)
		return false
	})
}

// pidAlive reports whether a process with this pid exists (a zombie
// counts: its parent has not collected it yet).
func pidAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// freeDevBasePort returns a base port N for --base-port whose ports for
// nodes nodes (API N+10*i, peer N+10*i+1) were all free on 127.0.0.1 a
// moment ago.
func freeDevBasePort(tb testing.TB, nodes int) int {
	tb.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+10*(nodes-1)+1 > 65535 {
			continue
		}
		var held []net.Listener
		free := true
		for i := range nodes {
			for _, port := range []int{base + 10*i, base + 10*i + 1} {
				l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
				if err != nil {
					free = false
					break
				}
				held = append(held, l)
			}
		}
		for _, l := range held {
			l.Close()
		}
		if free {
			return base
		}
	}
	tb.Fatal("found no base port with every development port free")
	return 0
}
