package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

const keysBucket = "enclaves/default/keys"

var testRootKey = bytes.Repeat([]byte{7}, storage.RootKeySize)

func MustStore(tb testing.TB, dir string) *storage.DB {
	tb.Helper()
	db, err := storage.Open(filepath.Join(dir, "state.db"), testRootKey, storage.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustNode opens node n1 in dir on store and waits until it leads.
func MustNode(tb testing.TB, dir string, store *storage.DB, logger *slog.Logger) *cluster.Node {
	tb.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	_, trans := raft.NewInmemTransport("n1")
	n, err := cluster.Open(cluster.Config{NodeID: "n1", PeerAddr: "n1", DataDir: dir, Store: store, Logger: logger,
		Transport: trans, Bootstrap: true, Timing: fastTiming})
	if err != nil {
		tb.Fatalf("open node: %v", err)
	}
	tb.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		tb.Fatalf("WaitLeader: %v", err)
	}
	if !n.IsLeader() {
		tb.Fatalf("the only node is not the leader: %+v", n.Stats())
	}
	return n
}

// MustSync waits until the log is applied to the store.
func MustSync(tb testing.TB, n *cluster.Node) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Sync(ctx); err != nil {
		tb.Fatalf("Sync: %v", err)
	}
}

func MustPropose(tb testing.TB, n *cluster.Node, c kv.Change) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Propose(ctx, c); err != nil {
		tb.Fatalf("Propose: %v", err)
	}
}

func put(name, value string) kv.Change {
	return kv.Change{
		Require: []kv.Condition{{Kind: kv.MustNotExist, Bucket: keysBucket, Name: name}},
		Apply:   []kv.Mutation{{Kind: kv.Put, Bucket: keysBucket, Name: name, Value: []byte(value)}},
	}
}

func MustGet(tb testing.TB, db *storage.DB, name string) kv.Entry {
	tb.Helper()
	e, err := db.Get(keysBucket, name)
	if err != nil {
		tb.Fatalf("Get(%s): %v", name, err)
	}
	return e
}

// recorder is a slog handler that keeps the messages it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

func TestSingleNode(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, dir)
	logs := &recorder{}
	n := MustNode(t, dir, store, slog.New(logs))

	MustPropose(t, n, put("k1", "value one"))
	MustPropose(t, n, put("k2", "value two"))
	e1, e2 := MustGet(t, store, "k1"), MustGet(t, store, "k2")
	if string(e1.Value) != "value one" || string(e2.Value) != "value two" {
		t.Errorf("values = %q, %q", e1.Value, e2.Value)
	}
	if e1.Revision == 0 || e2.Revision <= e1.Revision {
		t.Errorf("revisions = %d, %d; want growing and non-zero", e1.Revision, e2.Revision)
	}
	if got := store.AppliedIndex(); got < e2.Revision {
		t.Errorf("store AppliedIndex = %d, want at least %d", got, e2.Revision)
	}

	t.Run("Leader", func(t *testing.T) {
		if id, addr := n.Leader(); id != "n1" || addr != "n1" {
			t.Errorf("Leader() = %q, %q; want n1, n1", id, addr)
		}
	})
	t.Run("Stats", func(t *testing.T) {
		s := n.Stats()
		if s.ID != "n1" || s.State != "Leader" || s.LeaderID != "n1" || s.Term == 0 ||
			s.AppliedIndex < e2.Revision || s.CommitIndex < e2.Revision || s.LastIndex < e2.Revision {
			t.Errorf("Stats() = %+v", s)
		}
	})
	t.Run("ConditionError", func(t *testing.T) {
		err := n.Propose(context.Background(), put("k1", "again"))
		ce, ok := err.(*kv.ConditionError)
		if !ok || ce.Index != 0 {
			t.Fatalf("Propose(existing) = %v (%T), want *kv.ConditionError{0}", err, err)
		}
		if e := MustGet(t, store, "k1"); string(e.Value) != "value one" || e.Revision != e1.Revision {
			t.Errorf("k1 after a failed change = %q@%d", e.Value, e.Revision)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		bad := kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "a//b", Name: "x", Value: []byte("v")}}}
		before := store.AppliedIndex()
		if err := n.Propose(context.Background(), bad); !errors.Is(err, kv.ErrInvalid) {
			t.Fatalf("Propose(bad bucket) = %v, want ErrInvalid", err)
		}
		if got := store.AppliedIndex(); got != before {
			t.Errorf("an invalid change reached the log: applied index %d -> %d", before, got)
		}
	})
	t.Run("UnknownCommand", func(t *testing.T) {
		if _, err := n.ApplyCommand(context.Background(), []byte{9, 1}); !errors.Is(err, cluster.ErrCommand) {
			t.Errorf("ApplyCommand(type 9) = %v, want ErrCommand", err)
		}
	})
	t.Run("InvalidForwardedChange", func(t *testing.T) {
		// A forwarded command that decodes but is not a valid change is
		// refused before it reaches the log.
		cmd, err := cluster.EncodeCommand(cluster.Command{Type: cluster.CommandChange, Change: kv.Change{
			Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "a//b", Name: "x", Value: []byte("v")}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		before := n.Stats().LastIndex
		if _, err := n.ApplyCommand(context.Background(), cmd); !errors.Is(err, kv.ErrInvalid) {
			t.Fatalf("ApplyCommand(invalid change) = %v, want ErrInvalid", err)
		}
		if got := n.Stats().LastIndex; got != before {
			t.Errorf("an invalid forwarded change reached the log: last index %d -> %d", before, got)
		}
	})
	t.Run("RaftLogsToSlog", func(t *testing.T) {
		if !logs.has("Raft leader elected") || !logs.has("entering leader state") {
			t.Errorf("raft's log output did not reach the slog logger: %q", logs.msgs)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		err := n.Propose(context.Background(), put("k3", "v"))
		if !errors.Is(err, cluster.ErrNoLeader) || !errors.Is(err, cluster.ErrClosed) {
			t.Errorf("Propose after Close = %v, want ErrNoLeader and ErrClosed", err)
		}
	})
}

// TestProposeNoLeader opens a node whose raft configuration names a second
// voter that never answers: the node cannot win an election, so there is
// no leader, deterministically, and Propose says so.
func TestProposeNoLeader(t *testing.T) {
	dir := t.TempDir()
	raftDir := filepath.Join(dir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		t.Fatal(err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(raftDir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("n1")
	rc := raft.DefaultConfig()
	rc.LocalID = "n1"
	err = raft.BootstrapCluster(rc, logs, logs, snaps, trans, raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: "n1", Address: "n1"},
		{Suffrage: raft.Voter, ID: "n2", Address: "n2"}, // never started
	}})
	logs.Close()
	if err != nil {
		t.Fatal(err)
	}

	n, err := cluster.Open(cluster.Config{NodeID: "n1", PeerAddr: "n1", DataDir: dir, Store: MustStore(t, dir),
		Logger: slog.New(slog.DiscardHandler), Transport: trans, Timing: fastTiming})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := n.Propose(ctx, put("k", "v")); !errors.Is(err, cluster.ErrNoLeader) {
		t.Errorf("Propose without a leader = %v, want ErrNoLeader", err)
	}
	if n.IsLeader() {
		t.Error("a node without a quorum became leader")
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, dir)
	n := MustNode(t, dir, store, nil)
	for _, name := range []string{"a", "b", "c"} {
		MustPropose(t, n, put(name, "value of "+name))
	}
	MustPropose(t, n, kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: keysBucket, Name: "a", Value: []byte("new a")}}})
	before := map[string]kv.Entry{}
	for _, name := range []string{"a", "b", "c"} {
		before[name] = MustGet(t, store, name)
	}
	applied := store.AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = MustStore(t, dir)
	n = MustNode(t, dir, store, nil)
	MustSync(t, n)
	for name, want := range before {
		if got := MustGet(t, store, name); string(got.Value) != string(want.Value) || got.Revision != want.Revision {
			t.Errorf("%s after reopen = %q@%d, want %q@%d", name, got.Value, got.Revision, want.Value, want.Revision)
		}
	}
	if got := store.AppliedIndex(); got < applied {
		t.Errorf("AppliedIndex after reopen = %d, want at least %d", got, applied)
	}
	MustPropose(t, n, put("d", "after reopen"))
	if got := MustGet(t, store, "d"); got.Revision <= before["a"].Revision {
		t.Errorf("revision after reopen = %d, want above %d", got.Revision, before["a"].Revision)
	}
}

// MustSnapshotNode writes entries s1 and s2, snapshots, then writes l1 so that
// it is only in the log. It returns the entries and closes node and store.
func MustSnapshotNode(tb testing.TB, dir string) map[string]kv.Entry {
	tb.Helper()
	store := MustStore(tb, dir)
	n := MustNode(tb, dir, store, nil)
	MustPropose(tb, n, put("s1", "in the snapshot"))
	MustPropose(tb, n, put("s2", "in the snapshot too"))
	if err := n.Snapshot(); err != nil {
		tb.Fatal(err)
	}
	MustPropose(tb, n, put("l1", "only in the log"))
	entries := map[string]kv.Entry{}
	for _, name := range []string{"s1", "s2", "l1"} {
		entries[name] = MustGet(tb, store, name)
	}
	if err := n.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := store.Close(); err != nil {
		tb.Fatal(err)
	}
	return entries
}

func TestSnapshotRestore(t *testing.T) {
	t.Run("LostStateFile", func(t *testing.T) {
		dir := t.TempDir()
		want := MustSnapshotNode(t, dir)
		if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
			t.Fatal(err)
		}
		// The node restores the snapshot and replays the log after it.
		store := MustStore(t, dir)
		MustSync(t, MustNode(t, dir, store, nil))
		for name, w := range want {
			if got := MustGet(t, store, name); string(got.Value) != string(w.Value) || got.Revision != w.Revision {
				t.Errorf("%s = %q@%d, want %q@%d", name, got.Value, got.Revision, w.Value, w.Revision)
			}
		}
	})
	t.Run("NewNode", func(t *testing.T) {
		src, dst := t.TempDir(), t.TempDir()
		want := MustSnapshotNode(t, src)
		MustCopyDir(t, filepath.Join(src, "raft", "snapshots"), filepath.Join(dst, "raft", "snapshots"))

		store := MustStore(t, dst)
		n := MustNode(t, dst, store, nil)
		MustSync(t, n)
		for _, name := range []string{"s1", "s2"} {
			if got := MustGet(t, store, name); string(got.Value) != string(want[name].Value) || got.Revision != want[name].Revision {
				t.Errorf("%s = %q@%d, want %q@%d", name, got.Value, got.Revision, want[name].Value, want[name].Revision)
			}
		}
		if _, err := store.Get(keysBucket, "l1"); !errors.Is(err, kv.ErrNotExist) {
			t.Errorf("an entry after the snapshot reached the new node: %v", err)
		}
		MustPropose(t, n, put("n1", "written on the new node"))
		if got := MustGet(t, store, "n1"); got.Revision <= want["s2"].Revision {
			t.Errorf("revision on the new node = %d, want above %d", got.Revision, want["s2"].Revision)
		}
	})
}

func MustCopyDir(tb testing.TB, from, to string) {
	tb.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestNothingInClear(t *testing.T) {
	const (
		plaintext = "known-plaintext-2b7d90e4a1c3f658"
		name      = "entry-name-9e2f41"
	)
	dir := t.TempDir()
	store := MustStore(t, dir)
	n := MustNode(t, dir, store, nil)
	MustPropose(t, n, put(name, plaintext))
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	MustPropose(t, n, put(name+"-2", plaintext))
	n.Close()
	store.Close()

	var files []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	var sawName, sawLog bool
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		sawName = sawName || bytes.Contains(b, []byte(name))
		sawLog = sawLog || rel == filepath.Join("raft", "raft.db") && bytes.Contains(b, []byte(name+"-2"))
		if bytes.Contains(b, []byte(plaintext)) {
			t.Errorf("%s holds the plaintext value", rel)
		}
	}
	// Names are in clear: finding them shows the files searched are the
	// right ones and hold the entries.
	if !sawName || !sawLog {
		t.Errorf("entry names not found (any file %v, raft log %v) in %q; the check proves nothing", sawName, sawLog, files)
	}
}

// TestSnapshotOnStop: a graceful stop with many entries since the last
// snapshot takes one, so that the next start replays only what follows it.
func TestSnapshotOnStop(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, dir)
	n := MustNode(t, dir, store, nil)
	for i := range 1100 {
		MustPropose(t, n, put(fmt.Sprintf("k%04d", i), "v"))
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("no snapshot after a graceful stop: %v", err)
	}
	if applied, _ := store.Applied(); list[0].Index < 1100 || list[0].Index > applied {
		t.Errorf("snapshot at %d, applied %d", list[0].Index, applied)
	}
}

// TestReplayWritesNothing: at a restart raft replays the log since the
// last snapshot; the entries the state applied before are skipped after a
// read, without a write transaction (each cost two fsyncs and ~20 KB
// before, so that 200k entries took minutes).
func TestReplayWritesNothing(t *testing.T) {
	dir := t.TempDir()
	store := MustStore(t, dir)
	n := MustNode(t, dir, store, nil)
	for i := range 300 {
		MustPropose(t, n, put(fmt.Sprintf("k%03d", i), "v"))
	}
	applied, _ := store.Applied()
	n.Close() // fewer than 1024 entries: no snapshot on the way out
	store.Close()

	store = MustStore(t, dir)
	n = MustNode(t, dir, store, nil)
	MustSync(t, n)
	if got, _ := store.Applied(); got < applied {
		t.Fatalf("applied %d after the restart, want at least %d", got, applied)
	}
	// The replay wrote nothing; the node's upkeep (cluster id, report) has
	// nothing to change either.
	if w := store.Writes(); w != 0 {
		t.Errorf("%d write transactions while replaying %d applied entries, want 0", w, applied)
	}
}
