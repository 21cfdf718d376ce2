package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// statusOf asks node n for the cluster status.
func statusOf(t *testing.T, c *Cluster, n *ClusterNode) (*api.ClusterStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.ClientOf(n).ClusterStatus(ctx)
}

// findingOf returns the finding of kind about node (any node when ""), nil
// if there is none.
func findingOf(st *api.ClusterStatus, kind, node string) *api.ClusterFinding {
	for i, f := range st.Findings {
		if f.Kind == kind && (node == "" || slices.Contains(f.Nodes, node)) {
			return &st.Findings[i]
		}
	}
	return nil
}

// waitEveryNode waits until every running node's status satisfies cond.
func waitEveryNode(t *testing.T, c *Cluster, timeout time.Duration, what string, cond func(*api.ClusterStatus) (bool, string)) {
	t.Helper()
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		waitForState(t, timeout, n.ID+": "+what, func() (bool, string) {
			st, err := statusOf(t, c, n)
			if err != nil {
				return false, err.Error()
			}
			return cond(st)
		})
	}
}

func findingsText(st *api.ClusterStatus) string {
	var b strings.Builder
	for _, f := range st.Findings {
		fmt.Fprintf(&b, "[%s %s %v %s] ", f.Severity, f.Kind, f.Nodes, f.Message)
	}
	return b.String()
}

// giveCert replaces node n's certificate with one valid for validity and
// makes the node reload it.
func giveCert(t *testing.T, c *Cluster, n *ClusterNode, validity time.Duration) api.TLSStatus {
	t.Helper()
	leaf := c.CA.IssueValid(t, []string{n.IP}, validity)
	replaceFile(t, n.KeyFile, leaf.KeyPEM)
	replaceFile(t, n.CertFile, leaf.CertPEM)
	if res := c.CLI(n, "cert", "reload"); res.Code != 0 {
		t.Fatalf("cert reload on %s: exit %d\n%s%s", n.ID, res.Code, res.Stdout, res.Stderr)
	}
	var st api.TLSStatus
	if err := c.adminRequest(n, "GET", "/v1/tls/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if got, want := st.Pairs[0].Serial, leaf.Serial.Text(16); got != want {
		t.Fatalf("%s serves serial %s, want the new %s", n.ID, got, want)
	}
	return st
}

// TestClusterStatusCertificates: the certificate findings of issue 8, seen
// from every node, in the CLI's --check codes, the logs and the metrics.
func TestClusterStatusCertificates(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft(), Configure: func(n *ClusterNode, cfg *NodeConfig) {
		cfg.TLS.ReloadInterval = "2s"
	}})
	n2, n3 := c.Node(2), c.Node(3)
	offsets := c.LogOffsets()

	if res := c.CLI(c.Node(1), "cluster", "status", "--check"); res.Code != 0 {
		t.Fatalf("cluster status --check on a healthy cluster: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	t.Run("ExpiresSoon", func(t *testing.T) {
		st3 := giveCert(t, c, n3, 30*time.Hour)
		want := st3.Pairs[0].EffectiveExpiry
		waitEveryNode(t, c, 20*time.Second, "cert-expires-soon for n3", func(st *api.ClusterStatus) (bool, string) {
			f := findingOf(st, "cert-expires-soon", "n3")
			return f != nil && f.At.Equal(want), findingsText(st)
		})
		for _, n := range c.Nodes {
			waitFor(t, 20*time.Second, n.ID+" to log the warning about n3", func() bool {
				return LogProblem(n.Log.Since(offsets[n]), "Certificate of node n3 expires in") != ""
			})
		}
		if res := c.CLI(c.Node(1), "cluster", "status", "--check"); res.Code != 1 {
			t.Errorf("cluster status --check with one certificate expiring: exit %d, want 1\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
	})

	t.Run("ConsensusAtRisk", func(t *testing.T) {
		st2 := giveCert(t, c, n2, 31*time.Hour)
		later := st2.Pairs[0].EffectiveExpiry // n3's expires an hour earlier
		waitEveryNode(t, c, 20*time.Second, "consensus-at-risk naming n2 and n3", func(st *api.ClusterStatus) (bool, string) {
			f := findingOf(st, "consensus-at-risk", "")
			ok := f != nil && f.Severity == "critical" && slices.Contains(f.Nodes, "n2") && slices.Contains(f.Nodes, "n3") &&
				f.At.Equal(later) && st.ConsensusAtRisk.Equal(later)
			return ok, findingsText(st)
		})
		if res := c.CLI(c.Node(1), "cluster", "status", "--check"); res.Code != 2 {
			t.Errorf("cluster status --check with consensus at risk: exit %d, want 2\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		waitForState(t, 20*time.Second, "the consensus-at-risk metric", func() (bool, string) {
			var text string
			if err := c.adminRequestText(c.Node(1), "/metrics", &text); err != nil {
				return false, err.Error()
			}
			want := fmt.Sprintf("minkms_cluster_consensus_at_risk_timestamp_seconds %g", float64(later.Unix()))
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(line, "minkms_cluster_consensus_at_risk_timestamp_seconds ") {
					return sameMetric(line, want), line
				}
			}
			return false, "no metric"
		})
	})
}

// sameMetric compares two "name value" lines by their numeric value.
func sameMetric(a, b string) bool {
	var na, nb string
	var va, vb float64
	fmt.Sscanf(a, "%s %g", &na, &va)
	fmt.Sscanf(b, "%s %g", &nb, &vb)
	return na == nb && va == vb
}

// TestClusterStatusReloadAndCA: a certificate without the node's host is
// refused (the old one keeps serving) and flagged reload-failing on every
// node; a CA bundle that lacks the others' CA, swapped in by a reload, is
// flagged ca-mismatch on every node, before raft loses the member.
func TestClusterStatusReloadAndCA(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft(), Configure: func(n *ClusterNode, cfg *NodeConfig) {
		cfg.TLS.ReloadInterval = "2s"
	}})
	n1, n2 := c.Node(1), c.Node(2)

	t.Run("ReloadFailing", func(t *testing.T) {
		wrong := c.CA.IssueValid(t, []string{"127.0.0.250"}, 30*24*time.Hour)
		replaceFile(t, n2.KeyFile, wrong.KeyPEM)
		replaceFile(t, n2.CertFile, wrong.CertPEM)
		c.CLI(n2, "cert", "reload")
		waitEveryNode(t, c, 20*time.Second, "reload-failing for n2", func(st *api.ClusterStatus) (bool, string) {
			f := findingOf(st, "reload-failing", "n2")
			return f != nil && strings.Contains(f.Message, "SAN"), findingsText(st)
		})
		// n2 still serves its old certificate: the cluster is whole.
		c.WaitMembers(n1, 5*time.Second, "n1", "n2", "n3")
	})

}

// TestClusterStatusCAMismatch: n3 moves to a certificate of a second CA
// that every bundle holds; then n1's bundle is replaced, by a reload, with
// one that lacks the second CA. n1 would refuse n3 at the next handshake:
// ca-mismatch is flagged on every node before raft loses the member.
func TestClusterStatusCAMismatch(t *testing.T) {
	c := MustNewCluster(t, 3, ClusterOptions{Raft: FastRaft(), Configure: func(n *ClusterNode, cfg *NodeConfig) {
		cfg.TLS.ReloadInterval = "2s"
		cfg.TLS.CA = filepath.Join(n.Dir, "ca-bundle.crt") // a bundle of its own
	}})
	first, err := os.ReadFile(c.CA.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	second := MustNewCA(t, t.TempDir(), "second CA")
	secondPEM, err := os.ReadFile(second.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	both := append(slices.Clone(first), secondPEM...)
	for _, n := range c.Nodes {
		replaceFile(t, filepath.Join(n.Dir, "ca-bundle.crt"), both)
	}
	// The test's clients (SDK and CLI) trust both CAs.
	c.ExtraRoots = append(c.ExtraRoots, second.Cert)
	replaceFile(t, c.CA.CertFile, both)
	c.Start()
	c.WaitReady(60 * time.Second)
	n1, n3 := c.Node(1), c.Node(3)

	leaf := second.IssueValid(t, []string{n3.IP}, 30*24*time.Hour)
	replaceFile(t, n3.KeyFile, leaf.KeyPEM)
	replaceFile(t, n3.CertFile, leaf.CertPEM)
	if res := c.CLI(n3, "cert", "reload"); res.Code != 0 {
		t.Fatalf("cert reload on n3: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	waitEveryNode(t, c, 20*time.Second, "no ca-mismatch while every bundle holds both CAs", func(st *api.ClusterStatus) (bool, string) {
		return findingOf(st, "ca-mismatch", "") == nil && findingOf(st, "reload-failing", "") == nil, findingsText(st)
	})

	replaceFile(t, filepath.Join(n1.Dir, "ca-bundle.crt"), first)
	if res := c.CLI(n1, "cert", "reload"); res.Code != 0 {
		t.Fatalf("cert reload on n1: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	waitEveryNode(t, c, 20*time.Second, "ca-mismatch of n1 and n3", func(st *api.ClusterStatus) (bool, string) {
		f := findingOf(st, "ca-mismatch", "n3")
		return f != nil && slices.Contains(f.Nodes, "n1"), findingsText(st)
	})
}

// TestClusterStatusUnreachable: a node stopped with SIGSTOP is unreachable
// within the election timeout and clears after SIGCONT.
func TestClusterStatusUnreachable(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	leader := c.Leader()
	paused := c.Followers(leader)[0]
	c.Pause(paused.Index)
	start := time.Now()
	waitForState(t, 10*time.Second, "unreachable for "+paused.ID, func() (bool, string) {
		st, err := statusOf(t, c, leader)
		if err != nil {
			return false, err.Error()
		}
		return findingOf(st, "unreachable", paused.ID) != nil && !st.Healthy, findingsText(st)
	})
	t.Logf("%s flagged unreachable %s after SIGSTOP", paused.ID, time.Since(start).Round(time.Millisecond))
	c.Resume(paused.Index)
	waitForState(t, 20*time.Second, "the unreachable finding to clear", func() (bool, string) {
		st, err := statusOf(t, c, leader)
		if err != nil {
			return false, err.Error()
		}
		return findingOf(st, "unreachable", "") == nil && st.Healthy, findingsText(st)
	})
}

// TestRollingUpdateWaitHealthy: the rolling certificate update of
// docs/deploy.md, scripted with --wait-healthy between nodes, under client
// traffic: no failed request, and every node's status shows the new serials.
func TestRollingUpdateWaitHealthy(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	ctx := ctxT(t)
	if err := c.Client().CreateKey(ctx, "rolling"); err != nil {
		t.Fatal(err)
	}
	var (
		stop             = make(chan struct{})
		wg               sync.WaitGroup
		requests, failed atomic.Int64
		firstErr         atomic.Value
	)
	for g := range 3 {
		cl := c.ClientOf(rotated(c.Nodes, g)...)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				callCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				_, err := cl.Encrypt(callCtx, "rolling", []byte("x"), nil)
				cancel()
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	serials := map[string]string{}
	for _, n := range c.Nodes {
		if res := c.CLI(n, "cluster", "status", "--wait-healthy", "30s"); res.Code != 0 {
			t.Fatalf("--wait-healthy before %s: exit %d\n%s%s", n.ID, res.Code, res.Stdout, res.Stderr)
		}
		st := giveCert(t, c, n, 30*24*time.Hour)
		serials[n.ID] = st.Pairs[0].Serial
	}
	if res := c.CLI(c.Node(1), "cluster", "status", "--wait-healthy", "30s"); res.Code != 0 {
		t.Fatalf("--wait-healthy after the update: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during the rolling update; first: %v", f, requests.Load(), firstErr.Load())
	}
	for _, n := range c.Nodes {
		for id, serial := range serials {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := c.ClientOf(n).NodeTLSStatus(ctx, id)
			cancel()
			if err != nil || st.Pairs[0].Serial != serial {
				t.Errorf("%s reports %s's serial as %v (%v), want %s", n.ID, id, st, err, serial)
			}
		}
	}
	_ = syscall.SIGCONT
}
