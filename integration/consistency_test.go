package integration_test

import (
	"fmt"
	"sync"

	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// The state file and the raft log must agree: a node whose state file is
// ahead of its raft log would number new entries from the log's end and
// skip them as already applied, acknowledging writes it never applies. Each
// case damages a stopped node's data directory as an unlucky operator could
// and expects the node to refuse to start, saying what is inconsistent and
// what to do, with the directory left as it was.
func TestStateAndLogMustAgree(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, n *Node)
		words  []string
	}{
		{"RaftLogLost", func(t *testing.T, n *Node) {
			mustRemove(t, filepath.Join(n.DataDir, "raft", "raft.db"))
		}, []string{"raft log was lost", "restore this node's data directory from a backup"}},
		{"StateFileIntoFreshDirectory", func(t *testing.T, n *Node) {
			// A copy of state.db (a file-level "backup") put into a new,
			// empty data directory.
			state, err := os.ReadFile(filepath.Join(n.DataDir, "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(n.DataDir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(n.DataDir, "state.db"), state, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"raft log was lost"}},
		{"RaftLogLostOlderSnapshotKept", func(t *testing.T, n *Node) {
			mustRemove(t, filepath.Join(n.DataDir, "raft", "raft.db"))
		}, []string{"raft log was lost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := MustStartNode(t, NodeOptions{})
			ctx := ctxT(t)
			c := n.Client(n.AdminKey)
			for _, name := range []string{"a", "b", "c"} {
				if err := c.CreateKey(ctx, "acked-"+name); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "RaftLogLostOlderSnapshotKept" {
				// An older snapshot: taken by a graceful stop after enough
				// entries (more than 1024), then more writes that only the
				// log holds.
				mustCreateKeys(t, c, "bulk", 1100)
				n.Stop()
				if _, err := os.Stat(filepath.Join(n.DataDir, "raft", "snapshots")); err != nil {
					t.Fatal(err)
				}
				entries, _ := os.ReadDir(filepath.Join(n.DataDir, "raft", "snapshots"))
				if len(entries) == 0 {
					t.Fatal("the graceful stop took no snapshot")
				}
				n.MustStart()
				c = n.Client(n.AdminKey)
				if err := c.CreateKey(ctx, "after-restart"); err != nil {
					t.Fatal(err)
				}
			}
			n.Stop()
			tc.damage(t, n)
			before := snapshotDir(t, n.DataDir)

			n.Start()
			exited, err := n.Exited(30 * time.Second)
			if !exited || err == nil {
				t.Fatalf("the node started on an inconsistent data directory (exited %v, %v)", exited, err)
			}
			log := n.Log.String()
			for _, w := range append([]string{"state and raft log disagree"}, tc.words...) {
				if !strings.Contains(log, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, log)
				}
			}
			after := snapshotDir(t, n.DataDir)
			if len(after) != len(before) {
				t.Errorf("the refused start added or removed files: %d files before, %d after", len(before), len(after))
			}
			for name, data := range before {
				if !bytes.Equal(after[name], data) {
					t.Errorf("the refused start changed %s", name)
				}
			}
		})
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// mustCreateKeys creates count keys prefix-0.. with 16 concurrent calls.
func mustCreateKeys(t *testing.T, c *api.Client, prefix string, count int) {
	t.Helper()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, count)
	sem := make(chan struct{}, 16)
	for i := range count {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- c.CreateKey(ctx, fmt.Sprintf("%s-%d", prefix, i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
