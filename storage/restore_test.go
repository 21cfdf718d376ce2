package storage_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// MustCopyFile copies db's state to a file and returns its path.
func MustCopyFile(tb testing.TB, db *storage.DB) (path string, index, term uint64) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "copy.db")
	var buf bytes.Buffer
	index, term, n, err := db.Copy(&buf)
	if err != nil {
		tb.Fatalf("Copy: %v", err)
	}
	if n != int64(buf.Len()) {
		tb.Fatalf("Copy returned %d bytes, wrote %d", n, buf.Len())
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path, index, term
}

func TestCopy(t *testing.T) {
	db := MustOpenTemp(t)
	ops := []storage.Op{{Index: 7, Term: 2, Change: &kv.Change{Apply: []kv.Mutation{
		{Kind: kv.Put, Bucket: "b", Name: "n", Value: MustSeal(t, db, "b", "n", "v")},
	}}}}
	if _, err := db.ApplyBatch(ops); err != nil {
		t.Fatal(err)
	}
	path, index, term := MustCopyFile(t, db)
	if index != 7 || term != 2 {
		t.Errorf("Copy = index %d term %d, want 7 and 2", index, term)
	}
	if err := storage.VerifyFile(rootKey(1), path); err != nil {
		t.Errorf("VerifyFile of the copy: %v", err)
	}
	if !bytes.Equal(db.RootKeyCheckValue(), mustCheck(t, rootKey(1))) {
		t.Error("RootKeyCheckValue differs from RootKeyCheck of the root key")
	}
}

func mustCheck(tb testing.TB, key []byte) []byte {
	tb.Helper()
	c, err := storage.RootKeyCheck(key)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestRewriteForRestore: a backup's state, rewritten for a restore at a
// new index and term, reports them as applied, so that the entries after
// the restore are applied and not skipped, and carries the change.
func TestRewriteForRestore(t *testing.T) {
	src := MustOpenTemp(t)
	for i := uint64(1); i <= 100; i++ {
		MustPut(t, src, i, "keys", "k", "v")
	}
	MustPut(t, src, 101, "cluster/nodes", "n1", "old report")
	MustPut(t, src, 102, "cluster", "id", "c-old")
	path, index, _ := MustCopyFile(t, src)
	if index != 102 {
		t.Fatalf("backup index = %d, want 102", index)
	}

	dst := MustOpen(t, filepath.Join(t.TempDir(), "state.db"), rootKey(1))
	change := kv.Change{Apply: []kv.Mutation{
		{Kind: kv.DeleteBucket, Bucket: "cluster/nodes"},
		{Kind: kv.Put, Bucket: "cluster", Name: "id", Value: MustSeal(t, dst, "cluster", "id", "c-new")},
	}}
	if err := dst.RewriteForRestore(path, 30, 4, change); err != nil {
		t.Fatalf("RewriteForRestore: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := dst.Restore(f); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if index, term := dst.Applied(); index != 30 || term != 4 {
		t.Errorf("Applied after the restore = %d, %d; want 30, 4", index, term)
	}
	if got := MustGet(t, dst, "cluster", "id"); string(got.Value) != "c-new" {
		t.Errorf("cluster/id = %q, want c-new", got.Value)
	}
	if _, err := dst.Get("cluster/nodes", "n1"); !errors.Is(err, kv.ErrNotExist) {
		t.Errorf("node report after the restore: %v, want ErrNotExist", err)
	}
	if got := MustGet(t, dst, "keys", "k"); string(got.Value) != "v" {
		t.Errorf("keys/k = %q, want v", got.Value)
	}
	// The next entry of the new log, at 31, is applied, not skipped as
	// one below the backup's 102.
	results, err := dst.ApplyBatch([]storage.Op{{Index: 31, Term: 4, Change: &kv.Change{Apply: []kv.Mutation{
		{Kind: kv.Put, Bucket: "keys", Name: "after", Value: MustSeal(t, dst, "keys", "after", "new")},
	}}}})
	if err != nil || results[0] != nil {
		t.Fatalf("ApplyBatch after the restore: %v %v", err, results)
	}
	if got := MustGet(t, dst, "keys", "after"); string(got.Value) != "new" {
		t.Errorf("keys/after = %q, want new", got.Value)
	}
}

func TestRewriteForRestoreRefusesAnotherRootKey(t *testing.T) {
	src := MustOpenTemp(t)
	MustPut(t, src, 1, "keys", "k", "v")
	path, _, _ := MustCopyFile(t, src)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := MustOpen(t, filepath.Join(t.TempDir(), "state.db"), rootKey(2))
	err = other.RewriteForRestore(path, 30, 4, kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "keys", Name: "k"}}})
	if !errors.Is(err, storage.ErrWrongRootKey) {
		t.Fatalf("RewriteForRestore under another root key = %v, want ErrWrongRootKey", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the refused file was changed")
	}
}
