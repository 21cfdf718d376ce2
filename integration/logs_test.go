package integration_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// logRecords decodes the JSON lines that minkms logs --json prints.
func logRecords(tb testing.TB, out string) []api.LogRecord {
	tb.Helper()
	var recs []api.LogRecord
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r api.LogRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			tb.Fatalf("not a log record: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestLogsCluster: `minkms logs` on node 1 shows every node's records:
// node 3's certificate warning tagged n3; the filters; a follow that gets a
// record written later on node 3 and ends cleanly on Ctrl-C; and with
// node 3 stopped, the others' records and the name of the silent node.
func TestLogsCluster(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	n1 := c.Node(1)

	t.Run("CertificateWarningOfNode3", func(t *testing.T) {
		// Node 3 gets a certificate that expires in 30 hours, within
		// tls.warn_before (48h): it warns at each check, and its warning
		// must reach node 1.
		giveCert(t, c, c.Node(3), 30*time.Hour)
		var found *api.LogRecord
		waitForState(t, 30*time.Second, "node 3's certificate warning in minkms logs --all --level warn on node 1", func() (bool, string) {
			res := c.CLI(n1, "logs", "--all", "--level", "warn", "--json")
			if res.Code != 0 {
				return false, res.Stderr
			}
			for _, r := range logRecords(t, res.Stdout) {
				if r.Node == "n3" && r.Level == "WARN" && strings.HasPrefix(r.Message, "Certificate ") && strings.Contains(r.Message, " expires in ") {
					found = &r
					return true, ""
				}
			}
			return false, res.Stdout
		})
		human := c.CLI(n1, "logs", "--all", "-l", "warn", "-m", "certificate", "--since", "1d")
		if human.Code != 0 || !strings.Contains(human.Stdout, " n3 WARN  Certificate ") || !strings.Contains(human.Stdout, found.Message) {
			t.Errorf("human output (exit %d):\n%s\n%s", human.Code, human.Stdout, human.Stderr)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		res := c.CLI(n1, "logs", "--all", "-n", "3", "--json")
		if recs := logRecords(t, res.Stdout); res.Code != 0 || len(recs) != 3 {
			t.Errorf("-n 3: exit %d, %d records:\n%s", res.Code, len(recs), res.Stdout)
		}
		res = c.CLI(n1, "logs", "--all", "--until", time.Now().Add(-time.Hour).Format(time.RFC3339), "--json")
		if recs := logRecords(t, res.Stdout); res.Code != 0 || len(recs) != 0 {
			t.Errorf("--until an hour ago: exit %d, %d records", res.Code, len(recs))
		}
		res = c.CLI(n1, "logs", "--all", "--since", "10m", "-m", "NODE STARTED", "--json")
		recs := logRecords(t, res.Stdout)
		nodes := map[string]bool{}
		for _, r := range recs {
			if !strings.Contains(strings.ToLower(r.Message), "node started") {
				t.Errorf("-m NODE STARTED gave %q", r.Message)
			}
			nodes[r.Node] = true
		}
		if res.Code != 0 || len(nodes) != 3 {
			t.Errorf("-m NODE STARTED --since 10m: exit %d, nodes %v:\n%s", res.Code, nodes, res.Stderr)
		}
		res = c.CLI(n1, "logs", "--all", "-l", "error", "--json")
		for _, r := range logRecords(t, res.Stdout) {
			if r.Level != "ERROR" {
				t.Errorf("-l error gave a %s record", r.Level)
			}
		}
		if res := c.CLI(n1, "logs", "--since", "last tuesday"); res.Code != 1 || !strings.Contains(res.Stderr, "--since") {
			t.Errorf("--since 'last tuesday': exit %d %s", res.Code, res.Stderr)
		}
	})

	t.Run("FollowGetsRecordOfAnotherNode", func(t *testing.T) {
		cmd := exec.Command(binary, "logs", "--all", "-f", "--json", "-m", "Log level changed")
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+n1.URL, "MINKMS_CACERT="+c.CA.CertFile, "MINKMS_API_KEY="+c.AdminKey.String())
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer cmd.Process.Kill()
		time.Sleep(500 * time.Millisecond) // let it read the history first
		if res := c.CLI(n1, "log-level", "info", "--node", "n3"); res.Code != 0 || !strings.Contains(res.Stdout, "n3") {
			t.Fatalf("log-level --node n3: exit %d %s %s", res.Code, res.Stdout, res.Stderr)
		}
		waitForState(t, 20*time.Second, "the follow to show n3's record", func() (bool, string) {
			for _, r := range logRecords(t, stdout.String()) {
				if r.Node == "n3" && r.Message == "Log level changed" && r.Fields["by"] == c.AdminKey.Identity()+" through n1" {
					return true, ""
				}
			}
			return false, stdout.String() + stderr.String()
		})
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the follow ended with %v on Ctrl-C, want exit 0: %s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the follow did not end on Ctrl-C")
		}
	})

	t.Run("StoppedNodeIsNamed", func(t *testing.T) {
		c.Stop(3)
		res := c.CLI(n1, "logs", "--all", "-n", "5000", "--json")
		nodes := map[string]bool{}
		silent := false
		for _, r := range logRecords(t, res.Stdout) {
			if r.Notice == api.NoticeUnreachable && r.Node == "n3" {
				silent = true
				continue
			}
			nodes[r.Node] = true
		}
		if res.Code != 0 || !nodes["n1"] || !nodes["n2"] || !silent {
			t.Errorf("with n3 stopped: exit %d, nodes %v, n3 named: %v\n%s\n%s", res.Code, nodes, silent, res.Stdout, res.Stderr)
		}
		human := c.CLI(n1, "logs", "--all", "-n", "5")
		if human.Code != 0 || !strings.Contains(human.Stderr, "n3") || !strings.Contains(human.Stderr, "did not answer") {
			t.Errorf("human output with n3 stopped: exit %d\n%s\n%s", human.Code, human.Stdout, human.Stderr)
		}
	})
}
