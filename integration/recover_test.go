package integration_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRecoverLostQuorum: a three-node cluster loses n2 and n3 for good
// (SIGKILL, never started again). The survivor n1 is stopped and
// recovered offline with itself as the only member; started again it
// leads a one-node cluster that has the key created before, and grows
// again with add-node.
func TestRecoverLostQuorum(t *testing.T) {
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	ctx := ctxT(t)
	n1 := c.Node(1)
	// Created through n1, which answers once it has applied the create.
	if err := c.ClientOf(n1).CreateKey(ctx, "before-recovery"); err != nil {
		t.Fatal(err)
	}
	ct, err := c.ClientOf(n1).Encrypt(ctx, "before-recovery", []byte("survives"), nil)
	if err != nil {
		t.Fatal(err)
	}
	recoverN1 := func(args ...string) CLIResult {
		args = append([]string{"cluster", "recover", "--config", n1.ConfigFile}, args...)
		return runCLI(t, append(os.Environ(), "NO_COLOR=1"), args...)
	}
	self := "n1=" + n1.PeerAddr

	t.Run("RefusedWhileRunning", func(t *testing.T) {
		r := recoverN1("--member", self)
		if r.Code != 1 || !strings.Contains(r.Stderr, "the node is running; stop it first") {
			t.Errorf("recover of a running node: exit %d, stderr %q", r.Code, r.Stderr)
		}
	})

	c.Kill(2)
	c.Kill(3)
	c.Stop(1)

	t.Run("RefusedWithoutSelf", func(t *testing.T) {
		r := recoverN1("--member", "n2="+c.Node(2).PeerAddr)
		if r.Code != 1 || !strings.Contains(r.Stderr, "this node, n1, is not in the member list") {
			t.Errorf("recover without n1 in the list: exit %d, stderr %q", r.Code, r.Stderr)
		}
	})

	r := recoverN1("--member", self, "--json")
	if r.Code != 0 {
		t.Fatalf("recover: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "the last resort") {
		t.Errorf("recover printed no warning on stderr: %q", r.Stderr)
	}
	var got struct {
		Old, New []struct {
			ID          string `json:"id"`
			PeerAddress string `json:"peer_address"`
			Suffrage    string `json:"suffrage"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("recover --json: %v\n%s", err, r.Stdout)
	}
	if len(got.Old) != 3 || len(got.New) != 1 || got.New[0].ID != "n1" || got.New[0].PeerAddress != n1.PeerAddr || got.New[0].Suffrage != "voter" {
		t.Errorf("recover --json = %+v, want 3 old members and n1 alone, a voter, as new", got)
	}

	t.Run("AgainChangesNothing", func(t *testing.T) {
		r := recoverN1("--member", self)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "Node n1 ("+n1.DataDir+") has this configuration already; nothing changed\n") {
			t.Errorf("recover a second time: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
	})

	c.StartNode(n1)
	c.WaitNodeReady(n1, 30*time.Second)
	c.WaitMembers(n1, 10*time.Second, "n1")
	if pt, err := c.ClientOf(n1).Decrypt(ctx, "before-recovery", ct, nil); err != nil || string(pt) != "survives" {
		t.Fatalf("decrypt after recovery = %q, %v", pt, err)
	}
	if _, err := c.ClientOf(n1).Encrypt(ctx, "before-recovery", []byte("x"), nil); err != nil {
		t.Fatalf("encrypt after recovery: %v", err)
	}

	added := c.PrepareNode(nil)
	c.StartNode(added)
	c.WaitNodeLive(added, 30*time.Second)
	if _, err := c.AddMember(n1, added.PeerAddr); err != nil {
		t.Fatalf("add-node %s after recovery: %v", added.PeerAddr, err)
	}
	c.WaitMembers(n1, 30*time.Second, "n1", added.ID)
	c.WaitNodeReady(added, 30*time.Second)
	if pt, err := c.ClientOf(added).Decrypt(ctx, "before-recovery", ct, nil); err != nil || string(pt) != "survives" {
		t.Errorf("decrypt through the new %s = %q, %v", added.ID, pt, err)
	}
}
