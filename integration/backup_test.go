package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestBackupRestore takes a backup of one three-node cluster through a
// follower, restores it into a fresh cluster with the same root key, and
// checks that every node of it decrypts the old ciphertexts and that the
// writes after the restore are applied and survive restarts (the restored
// state's applied index is the new log's, not the backup's). A cluster
// with another root key refuses the same backup and keeps what it had.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	src := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := src.Client()
	defer cl.CloseIdleConnections()

	// Enough writes that the backup's applied index is well past the log
	// of the cluster it is restored into: a state that kept it would
	// skip the writes that follow the restore.
	const keys = 120
	for i := range keys {
		if err := cl.CreateKey(ctx, fmt.Sprintf("k%03d", i)); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
	}
	plaintext := []byte("kept across the restore")
	ciphertext, err := cl.Encrypt(ctx, "k000", plaintext, nil)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}

	follower := src.Followers(src.Leader())[0]
	file := filepath.Join(t.TempDir(), "cluster.mkb")
	res := src.CLI(follower, "backup", "--consistent", "--json", file)
	if res.Code != 0 {
		t.Fatalf("minkms backup: exit %d: %s", res.Code, res.Stderr)
	}
	var info struct {
		File string `json:"file"`
		api.BackupInfo
	}
	if err := json.Unmarshal([]byte(res.Stdout), &info); err != nil {
		t.Fatalf("minkms backup --json: %v: %s", err, res.Stdout)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClusterID == "" || info.NodeID != follower.ID || info.Index < keys || info.Size != fi.Size() {
		t.Fatalf("backup info = %+v; want the cluster id, node %s, index >= %d, size %d", info, follower.ID, keys, fi.Size())
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("backup file mode = %o, want 600", mode)
	}
	if entries, _ := filepath.Glob(filepath.Join(follower.DataDir, ".backup-*")); len(entries) > 0 {
		t.Errorf("temporary files left in the data directory: %v", entries)
	}

	t.Run("WrongRootKey", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		other := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()}).For(t)
		ocl := other.Client()
		defer ocl.CloseIdleConnections()
		if err := ocl.CreateKey(ctx, "before"); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		res := other.CLI(other.Node(2), "restore", file)
		if res.Code != 2 || !strings.Contains(res.Stderr, "not fresh") {
			t.Errorf("restore into a cluster with a key: exit %d, stderr %q; want 2 and \"not fresh\"", res.Code, res.Stderr)
		}
		res = other.CLI(other.Node(2), "restore", "--force", file)
		if res.Code != 2 || !strings.Contains(res.Stderr, "another root key") {
			t.Errorf("restore of another root key's backup: exit %d, stderr %q; want 2 and \"another root key\"", res.Code, res.Stderr)
		}
		for _, n := range other.Nodes {
			nc := other.ClientOf(n)
			names, err := nc.ListKeys(api.WithConsistentReads(ctx, true), "", "", 0)
			nc.CloseIdleConnections()
			if err != nil {
				t.Fatalf("%s: ListKeys: %v", n.ID, err)
			}
			if !slices.Equal(names.Names, []string{"before"}) {
				t.Errorf("%s: keys after the refused restore = %v, want [before]", n.ID, names.Names)
			}
		}
	})

	t.Run("FreshCluster", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		dst := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft(), RootKey: src.RootKey}).For(t)
		dstID := clusterIDOf(t, dst)
		res := dst.CLI(dst.Followers(dst.Leader())[0], "restore", "--json", file)
		if res.Code != 0 {
			t.Fatalf("minkms restore: exit %d: %s", res.Code, res.Stderr)
		}
		var rr api.RestoreResponse
		if err := json.Unmarshal([]byte(res.Stdout), &rr); err != nil {
			t.Fatalf("minkms restore --json: %v: %s", err, res.Stdout)
		}
		if rr.ClusterID != dstID || rr.BackupClusterID != info.ClusterID || rr.BackupIndex != info.Index {
			t.Errorf("restore = %+v; want cluster %s, backup of %s at %d", rr, dstID, info.ClusterID, info.Index)
		}

		decryptsEverywhere := func(name string, ciphertext, plaintext []byte) {
			t.Helper()
			for _, n := range dst.Nodes {
				nc := dst.ClientOf(n)
				waitFor(t, 20*time.Second, n.ID+" to decrypt with "+name, func() bool {
					got, err := nc.Decrypt(ctx, name, ciphertext, nil)
					return err == nil && bytes.Equal(got, plaintext)
				})
				nc.CloseIdleConnections()
			}
		}
		decryptsEverywhere("k000", ciphertext, plaintext)

		dcl := dst.Client()
		defer dcl.CloseIdleConnections()
		if err := dcl.CreateKey(ctx, "after"); err != nil {
			t.Fatalf("CreateKey after the restore: %v", err)
		}
		after, err := dcl.Encrypt(ctx, "after", []byte("written after"), nil)
		if err != nil {
			t.Fatalf("Encrypt after the restore: %v", err)
		}
		decryptsEverywhere("after", after, []byte("written after"))
		if got := clusterIDOf(t, dst); got != dstID {
			t.Errorf("cluster id after the restore = %s, want this cluster's %s", got, dstID)
		}
		names, err := dcl.ListKeys(api.WithConsistentReads(ctx, true), "", "", 1000)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(names.Names) != keys+1 {
			t.Errorf("after the restore there are %d keys, want %d", len(names.Names), keys+1)
		}

		// Every node, the leader whose log has the restore's hole
		// included, starts again with everything.
		for _, n := range []*ClusterNode{dst.Leader(), dst.Followers(dst.Leader())[0]} {
			dst.Restart(n.Index)
		}
		decryptsEverywhere("after", after, []byte("written after"))
		decryptsEverywhere("k000", ciphertext, plaintext)
		dst.WaitMembers(dst.Node(1), 20*time.Second, "n1", "n2", "n3")
	})
}

// clusterIDOf returns the id of the cluster, as a backup's header names
// it.
func clusterIDOf(t *testing.T, c *Cluster) string {
	t.Helper()
	cl := c.Client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := cl.Backup(ctx, io.Discard, true)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if info.ClusterID == "" {
		t.Fatal("Backup: no cluster id in the header")
	}
	return info.ClusterID
}
