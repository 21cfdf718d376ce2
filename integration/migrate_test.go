package integration_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// oldRaftAddress is the raft address a node of the single-node layout
// recorded for itself: its in-memory transport's address, which was the
// configured cluster.address, by default this one. Nothing listens on it.
const oldRaftAddress = "127.0.0.1:7374"

// TestMigrateSingleNode starts the real binary on a data directory of the
// single-node layout that builds before clusters wrote — a one-member
// raft configuration of id n1 at the in-memory transport's address, and
// no data_dir/node-id — with a config that names node_id n1, no bootstrap
// setting and its own advertise_peer. The node migrates the configuration
// once to that id and address, serves what was written before, and grows
// to three nodes with add-node, every one of which serves the old data.
func TestMigrateSingleNode(t *testing.T) {
	c := MustNewCluster(t, 3, ClusterOptions{Formation: FormNone, Raft: FastRaft()})
	n1, n2, n3 := c.Node(1), c.Node(2), c.Node(3)
	if n1.Config.Cluster.Bootstrap || n1.Config.Cluster.BootstrapExpect != 0 || len(n1.Config.Cluster.Join) != 0 {
		t.Fatalf("n1 has a formation setting: %+v", n1.Config.Cluster)
	}
	plaintext := []byte("written by a single node before the migration")
	ciphertext := writeSingleNodeLayout(t, n1.DataDir, c.RootKey, c.AdminKey, plaintext)

	c.StartNode(n1)
	c.WaitNodeReady(n1, 30*time.Second)
	line := LogLine(n1.Log.String(), "Migrating a single-node data directory")
	if line == "" {
		t.Fatal("n1 did not log that it migrates the single-node data directory")
	}
	for _, want := range []string{`"old_id":"n1"`, `"old_address":"` + oldRaftAddress + `"`, `"id":"n1"`, `"peer_address":"` + n1.PeerAddr + `"`} {
		if LogLine(line, want) == "" {
			t.Errorf("the migration line lacks %s: %s", want, line)
		}
	}
	members := c.WaitMembers(n1, 10*time.Second, "n1")
	if m := members[0]; m.PeerAddress != n1.PeerAddr || !m.Leader {
		t.Fatalf("after the migration n1 is %+v, want the leader at %s", m, n1.PeerAddr)
	}
	mustDecryptOld(t, c, n1, ciphertext, plaintext)

	// The migration happens once: a restart finds nothing to migrate. The
	// run that migrated stops cleanly on SIGTERM: raft.RecoverCluster
	// never releases the snapshot it takes, whose bbolt read transaction
	// used to block closing the state file until the harness's SIGKILL.
	before := n1.Log.Len()
	start := time.Now()
	c.Stop(1)
	if _, err := n1.exited(); err != nil || time.Since(start) > 10*time.Second {
		t.Fatalf("the node that migrated did not stop cleanly on SIGTERM: %v after %s", err, time.Since(start))
	}
	c.StartNode(n1)
	c.WaitNodeReady(n1, 30*time.Second)
	if line := LogLine(n1.Log.Since(before), "Migrating"); line != "" {
		t.Fatalf("n1 migrated again after a restart: %s", line)
	}
	mustDecryptOld(t, c, n1, ciphertext, plaintext)

	// Grow it: two fresh nodes without a formation setting, added by n1.
	for _, n := range []*ClusterNode{n2, n3} {
		c.StartNode(n)
		c.WaitNodeLive(n, 30*time.Second)
		if _, err := c.AddMember(n1, n.PeerAddr); err != nil {
			t.Fatalf("adding %s at %s: %v", n.ID, n.PeerAddr, err)
		}
	}
	c.WaitMembers(n1, 60*time.Second, "n1", "n2", "n3")
	c.WaitReady(60 * time.Second)
	peers := map[string]string{n1.ID: n1.PeerAddr, n2.ID: n2.PeerAddr, n3.ID: n3.PeerAddr}
	for _, n := range c.Nodes {
		mustDecryptOld(t, c, n, ciphertext, plaintext)
		members, err := c.Members(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.PeerAddress != peers[m.ID] {
				t.Errorf("%s lists %s at %s, want %s", n.ID, m.ID, m.PeerAddress, peers[m.ID])
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.NodeClient(3).CreateKey(ctx, "after-the-migration"); err != nil {
		t.Fatalf("creating a key through n3: %v", err)
	}
	if _, err := c.NodeClient(1).Encrypt(ctx, "after-the-migration", []byte("x"), nil); err != nil {
		t.Fatalf("encrypting through n1 with the key created through n3: %v", err)
	}
}

// mustDecryptOld shows that node n holds the key written before the
// migration: it decrypts the ciphertext made then, and describes the key
// with both its versions.
func mustDecryptOld(t *testing.T, c *Cluster, n *ClusterNode, ciphertext, plaintext []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := c.ClientOf(n)
	defer cl.CloseIdleConnections()
	got, err := cl.Decrypt(ctx, "legacy-key", ciphertext, []byte("legacy"))
	if err != nil || string(got) != string(plaintext) {
		t.Fatalf("%s decrypts the old ciphertext to %q, %v; want %q", n.ID, got, err, plaintext)
	}
	info, err := cl.Enclave(kms.DefaultEnclave).DescribeKey(ctx, "legacy-key")
	if err != nil || len(info.Versions) != 2 {
		t.Fatalf("%s describes the old key as %+v, %v; want two versions", n.ID, info, err)
	}
}

// writeSingleNodeLayout writes into dataDir what a node of the
// single-node layout left there: the state file and a raft log whose one
// member is id n1 at oldRaftAddress, bootstrapped by the node itself; the
// default enclave and a key with two versions, written through kms. It
// returns a ciphertext of plaintext under the key's first version.
//
// The node runs on this build's cluster package with an in-memory
// transport, as the single-node builds did. Unlike them it also records a
// cluster id; the migration does not depend on it.
func writeSingleNodeLayout(t *testing.T, dataDir, rootKeyText string, admin *api.APIKey, plaintext []byte) []byte {
	t.Helper()
	rootKey, err := server.ParseRootKey(rootKeyText)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(filepath.Join(dataDir, server.StateFile), rootKey, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, transport := raft.NewInmemTransport(oldRaftAddress)
	logs := &syncBuffer{}
	node, err := cluster.Open(cluster.Config{
		NodeID:    "n1",
		PeerAddr:  oldRaftAddress,
		DataDir:   dataDir,
		Store:     db,
		Transport: transport,
		Bootstrap: true,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("log of the single node:\n%s", logs)
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminID, err := kms.ParseIdentity(admin.Identity())
	if err != nil {
		t.Fatal(err)
	}
	svc := kms.New(localReader{db}, node, kms.Options{Admins: []kms.Identity{adminID}})
	waitFor(t, 20*time.Second, "the single node to create the default enclave", func() bool {
		return svc.Init(ctx) == nil
	})
	caller, err := svc.Caller(ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, caller, kms.DefaultEnclave, "legacy-key", kms.AES256); err != nil {
		t.Fatal(err)
	}
	ciphertext, err := svc.Encrypt(ctx, caller, kms.DefaultEnclave, "legacy-key", plaintext, []byte("legacy"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateKey(ctx, caller, kms.DefaultEnclave, "legacy-key"); err != nil {
		t.Fatal(err)
	}
	if err := node.Close(); err != nil {
		t.Fatal(err)
	}
	// The single-node builds wrote no node id: that is what marks the layout.
	if err := os.Remove(filepath.Join(dataDir, "node-id")); err != nil {
		t.Fatalf("this build's node wrote no node-id file to remove: %v", err)
	}
	return ciphertext
}

// localReader is kms.Reader over the state file alone, as a single node
// read it.
type localReader struct{ db *storage.DB }

func (r localReader) Get(_ context.Context, bucket, name string) (kv.Entry, error) {
	return r.db.Get(bucket, name)
}

func (r localReader) List(_ context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	return r.db.List(bucket, prefix, after, limit)
}
