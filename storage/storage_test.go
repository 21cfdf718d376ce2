package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// rootKey returns a 32-byte test root key made of b.
func rootKey(b byte) []byte { return bytes.Repeat([]byte{b}, storage.RootKeySize) }

func MustOpen(tb testing.TB, path string, key []byte) *storage.DB {
	tb.Helper()
	db, err := storage.Open(path, key, storage.Options{})
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func MustOpenTemp(tb testing.TB) *storage.DB {
	tb.Helper()
	return MustOpen(tb, filepath.Join(tb.TempDir(), "state.db"), rootKey(1))
}

// MustPut seals value for bucket/name and applies it as index.
func MustPut(tb testing.TB, db *storage.DB, index uint64, bucket, name, value string) {
	tb.Helper()
	MustApply(tb, db, index, kv.Change{Apply: []kv.Mutation{
		{Kind: kv.Put, Bucket: bucket, Name: name, Value: MustSeal(tb, db, bucket, name, value)},
	}})
}

func MustSeal(tb testing.TB, db *storage.DB, bucket, name, value string) []byte {
	tb.Helper()
	sealed, err := db.Seal(bucket, name, []byte(value))
	if err != nil {
		tb.Fatalf("Seal(%s, %s): %v", bucket, name, err)
	}
	return sealed
}

func MustApply(tb testing.TB, db *storage.DB, index uint64, c kv.Change) {
	tb.Helper()
	if err := db.Apply(index, c); err != nil {
		tb.Fatalf("Apply(%d): %v", index, err)
	}
}

func MustGet(tb testing.TB, db *storage.DB, bucket, name string) kv.Entry {
	tb.Helper()
	e, err := db.Get(bucket, name)
	if err != nil {
		tb.Fatalf("Get(%s, %s): %v", bucket, name, err)
	}
	return e
}

func MustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := MustOpen(t, path, rootKey(1))
	if got := db.AppliedIndex(); got != 0 {
		t.Fatalf("fresh AppliedIndex = %d, want 0", got)
	}
	MustPut(t, db, 3, "enclaves/default/keys", "k1", "secret one")
	MustPut(t, db, 7, "enclaves/default/keys", "k2", "")

	check := func(t *testing.T, db *storage.DB) {
		t.Helper()
		for _, tc := range []struct {
			name, value string
			revision    uint64
		}{{"k1", "secret one", 3}, {"k2", "", 7}} {
			e := MustGet(t, db, "enclaves/default/keys", tc.name)
			if string(e.Value) != tc.value || e.Revision != tc.revision {
				t.Errorf("Get(%s) = %q@%d, want %q@%d", tc.name, e.Value, e.Revision, tc.value, tc.revision)
			}
		}
		if got := db.AppliedIndex(); got != 7 {
			t.Errorf("AppliedIndex = %d, want 7", got)
		}
		if e := MustGet(t, db, "enclaves/default/keys", "k1"); e.Index != 7 {
			t.Errorf("Get(k1).Index = %d, want the applied index 7", e.Index)
		}
		if _, err := db.Get("enclaves/default/keys", "k3"); !errors.Is(err, kv.ErrNotExist) {
			t.Errorf("Get(missing entry) = %v, want ErrNotExist", err)
		}
		if _, err := db.Get("enclaves/other/keys", "k1"); !errors.Is(err, kv.ErrNotExist) {
			t.Errorf("Get(missing bucket) = %v, want ErrNotExist", err)
		}
	}
	t.Run("Open", func(t *testing.T) { check(t, db) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("Reopen", func(t *testing.T) { check(t, MustOpen(t, path, rootKey(1))) })
	t.Run("Closed", func(t *testing.T) {
		if _, err := db.Get("enclaves/default/keys", "k1"); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
	})
}

func TestOpenRefuses(t *testing.T) {
	t.Run("ErrWrongRootKey", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		db := MustOpen(t, path, rootKey(1))
		MustPut(t, db, 1, "b", "e", "v")
		db.Close()
		before := MustReadFile(t, path)

		_, err := storage.Open(path, rootKey(2), storage.Options{})
		if !errors.Is(err, storage.ErrWrongRootKey) {
			t.Fatalf("Open with another root key = %v, want ErrWrongRootKey", err)
		}
		if !bytes.Equal(MustReadFile(t, path), before) {
			t.Error("Open with another root key changed the file")
		}
		MustGet(t, MustOpen(t, path, rootKey(1)), "b", "e")
	})
	t.Run("ErrSchema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		junk := bytes.Repeat([]byte("not a bbolt file "), 1000)
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.Open(path, rootKey(1), storage.Options{}); !errors.Is(err, storage.ErrSchema) {
			t.Fatalf("Open(junk) = %v, want ErrSchema", err)
		}
		if !bytes.Equal(MustReadFile(t, path), junk) {
			t.Error("Open(junk) changed the file")
		}
	})
	t.Run("ForeignBolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		MustWriteBolt(t, path, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("data"))
			return err
		})
		if _, err := storage.Open(path, rootKey(1), storage.Options{}); !errors.Is(err, storage.ErrSchema) {
			t.Fatalf("Open(bolt file without meta) = %v, want ErrSchema", err)
		}
	})
	t.Run("ShortRootKey", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		if _, err := storage.Open(path, make([]byte, 16), storage.Options{}); !errors.Is(err, kv.ErrInvalid) {
			t.Fatalf("Open(16-byte key) = %v, want ErrInvalid", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open(16-byte key) created the file: %v", err)
		}
	})
}

// MustWriteBolt changes a closed state file directly, as an attacker or a
// broken disk could.
func MustWriteBolt(tb testing.TB, path string, fn func(*bolt.Tx) error) {
	tb.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(fn); err != nil {
		tb.Fatal(err)
	}
}

func TestAssociatedDataBinding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := MustOpen(t, path, rootKey(1))
	MustPut(t, db, 1, "enclaves/a/keys", "x", "value of x")
	MustPut(t, db, 2, "enclaves/a/keys", "y", "value of y")
	MustPut(t, db, 3, "enclaves/b/keys", "x", "value of b x")
	db.Close()

	MustWriteBolt(t, path, func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte("data"))
		a, b := data.Bucket([]byte("enclaves/a/keys")), data.Bucket([]byte("enclaves/b/keys"))
		x, y, bx := bytes.Clone(a.Get([]byte("x"))), bytes.Clone(a.Get([]byte("y"))), bytes.Clone(b.Get([]byte("x")))
		return errors.Join(a.Put([]byte("x"), y), a.Put([]byte("y"), x), b.Put([]byte("x"), bx[:len(bx)-1]))
	})

	db = MustOpen(t, path, rootKey(1))
	for _, tc := range []struct{ name, bucket, entry string }{
		{"SwappedName", "enclaves/a/keys", "x"},
		{"SwappedName2", "enclaves/a/keys", "y"},
		{"Truncated", "enclaves/b/keys", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := db.Get(tc.bucket, tc.entry)
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("Get = %q, %v; want ErrCorrupt", e.Value, err)
			}
			if e.Value != nil {
				t.Errorf("Get returned a value with the error: %q", e.Value)
			}
		})
	}
}

func TestApplyPreconditions(t *testing.T) {
	const bucket = "enclaves/default/keys"
	cond := func(kind kv.ConditionKind, name string, rev uint64) kv.Condition {
		return kv.Condition{Kind: kind, Bucket: bucket, Name: name, Revision: rev, Code: fmt.Sprintf("%s-%d", name, kind)}
	}
	tests := []struct {
		name    string
		require []kv.Condition
		failed  int // index of the first failed condition, -1 for none
	}{
		{"MustNotExist/Missing", []kv.Condition{cond(kv.MustNotExist, "new", 0)}, -1},
		{"MustNotExist/Present", []kv.Condition{cond(kv.MustNotExist, "old", 0)}, 0},
		{"MustNotExist/OtherBucket", []kv.Condition{{Kind: kv.MustNotExist, Bucket: "other", Name: "old"}}, -1},
		{"MustExist/Present", []kv.Condition{cond(kv.MustExist, "old", 0)}, -1},
		{"MustExist/Missing", []kv.Condition{cond(kv.MustExist, "new", 0)}, 0},
		{"AtRevision/Same", []kv.Condition{cond(kv.AtRevision, "old", 1)}, -1},
		{"AtRevision/Other", []kv.Condition{cond(kv.AtRevision, "old", 2)}, 0},
		{"AtRevision/Missing", []kv.Condition{cond(kv.AtRevision, "new", 0)}, 0},
		{"FirstFailed", []kv.Condition{
			cond(kv.MustExist, "old", 0),
			cond(kv.MustExist, "new", 0),
			cond(kv.MustNotExist, "old", 0),
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := MustOpenTemp(t)
			MustPut(t, db, 1, bucket, "old", "v1")
			err := db.Apply(2, kv.Change{
				Require: tc.require,
				Apply: []kv.Mutation{
					{Kind: kv.Put, Bucket: bucket, Name: "new", Value: MustSeal(t, db, bucket, "new", "v2")},
					{Kind: kv.Delete, Bucket: bucket, Name: "old"},
				},
			})
			if got := db.AppliedIndex(); got != 2 {
				t.Errorf("AppliedIndex = %d, want 2 whatever the outcome", got)
			}
			if tc.failed < 0 {
				if err != nil {
					t.Fatalf("Apply = %v, want nil", err)
				}
				if e := MustGet(t, db, bucket, "new"); string(e.Value) != "v2" || e.Revision != 2 {
					t.Errorf("new = %q@%d, want v2@2", e.Value, e.Revision)
				}
				if _, err := db.Get(bucket, "old"); !errors.Is(err, kv.ErrNotExist) {
					t.Errorf("old after Delete: %v, want ErrNotExist", err)
				}
				return
			}
			var ce *kv.ConditionError
			if !errors.As(err, &ce) || ce.Index != tc.failed || ce.Code != tc.require[tc.failed].Code {
				t.Fatalf("Apply = %v, want ConditionError{%d, %q}", err, tc.failed, tc.require[tc.failed].Code)
			}
			if _, err := db.Get(bucket, "new"); !errors.Is(err, kv.ErrNotExist) {
				t.Errorf("a failed change wrote new: %v", err)
			}
			if e := MustGet(t, db, bucket, "old"); e.Revision != 1 {
				t.Errorf("a failed change touched old: revision %d", e.Revision)
			}
		})
	}
}

func TestApplyInvalid(t *testing.T) {
	tests := []struct {
		name string
		c    kv.Change
	}{
		{"UnknownMutation", kv.Change{Apply: []kv.Mutation{{Kind: 9, Bucket: "b", Name: "n"}}}},
		{"UnknownCondition", kv.Change{Require: []kv.Condition{{Kind: 9, Bucket: "b", Name: "n"}}}},
		{"EmptyBucket", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Name: "n"}}}},
		{"EmptySegment", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "a//b", Name: "n"}}}},
		{"TrailingSlash", kv.Change{Apply: []kv.Mutation{{Kind: kv.DeleteBucket, Bucket: "a/"}}}},
		{"EmptyName", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "b"}}}},
		{"NULName", kv.Change{Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: "b", Name: "n\x00"}}}},
		{"PutNoValue", kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: "n"}}}},
		// Longer than bbolt's key limit: a write error, fatal to the FSM, unless refused as invalid.
		{"PutLongName", kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: strings.Repeat("n", 40000), Value: []byte("v")}}}},
		{"PutLongBucket", kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: strings.Repeat("b", 40000), Name: "n", Value: []byte("v")}}}},
		{"ConditionBadCode", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b", Name: "n", Code: "Key Exists"}}}},
		{"ConditionLongName", kv.Change{Require: []kv.Condition{{Kind: kv.MustExist, Bucket: "b", Name: strings.Repeat("n", kv.MaxPathLen+1)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := MustOpenTemp(t)
			MustPut(t, db, 1, "b", "keep", "v")
			c := tc.c
			c.Apply = append(slices.Clone(c.Apply), kv.Mutation{Kind: kv.Delete, Bucket: "b", Name: "keep"})
			if err := db.Apply(2, c); !errors.Is(err, kv.ErrInvalid) {
				t.Fatalf("Apply = %v, want ErrInvalid", err)
			}
			if got := db.AppliedIndex(); got != 2 {
				t.Errorf("AppliedIndex = %d, want 2", got)
			}
			MustGet(t, db, "b", "keep")
		})
	}
}

func TestApplyIdempotent(t *testing.T) {
	db := MustOpenTemp(t)
	MustPut(t, db, 5, "b", "e", "first")
	for _, index := range []uint64{5, 4, 1} {
		t.Run(fmt.Sprint(index), func(t *testing.T) {
			MustPut(t, db, index, "b", "e", "replayed")
			MustPut(t, db, index, "b", "other", "replayed")
			if e := MustGet(t, db, "b", "e"); string(e.Value) != "first" || e.Revision != 5 {
				t.Errorf("after re-applying %d: %q@%d, want first@5", index, e.Value, e.Revision)
			}
			if _, err := db.Get("b", "other"); !errors.Is(err, kv.ErrNotExist) {
				t.Errorf("re-applying %d wrote a new entry: %v", index, err)
			}
			if got := db.AppliedIndex(); got != 5 {
				t.Errorf("AppliedIndex = %d, want 5", got)
			}
		})
	}
}

func TestDeleteBucket(t *testing.T) {
	buckets := []string{"enclaves", "enclaves/a", "enclaves/a/keys", "enclaves/a/keys/v", "enclaves/a-b", "enclaves/ab", "enclaves/ab/keys", "enclavesa"}
	tests := []struct {
		bucket string
		gone   []string
	}{
		{"enclaves/a", []string{"enclaves/a", "enclaves/a/keys", "enclaves/a/keys/v"}},
		{"enclaves/a/keys", []string{"enclaves/a/keys", "enclaves/a/keys/v"}},
		{"enclaves/ab", []string{"enclaves/ab", "enclaves/ab/keys"}},
		{"enclaves", []string{"enclaves", "enclaves/a", "enclaves/a/keys", "enclaves/a/keys/v", "enclaves/a-b", "enclaves/ab", "enclaves/ab/keys"}},
		{"missing", nil},
	}
	for _, tc := range tests {
		t.Run(tc.bucket, func(t *testing.T) {
			db := MustOpenTemp(t)
			for i, b := range buckets {
				MustPut(t, db, uint64(i+1), b, "e", b)
			}
			MustApply(t, db, 100, kv.Change{Apply: []kv.Mutation{{Kind: kv.DeleteBucket, Bucket: tc.bucket}}})
			for _, b := range buckets {
				_, err := db.Get(b, "e")
				if gone := slices.Contains(tc.gone, b); gone != errors.Is(err, kv.ErrNotExist) {
					t.Errorf("after deleting %s: Get(%s) = %v, want gone=%v", tc.bucket, b, err, gone)
				}
			}
		})
	}
}

func TestList(t *testing.T) {
	db := MustOpenTemp(t)
	names := []string{"a", "a1", "a2", "ab", "b", "b1", "c"}
	for i, n := range names {
		MustPut(t, db, uint64(i+1), "bucket", n, "v")
	}
	tests := []struct {
		name, prefix, after string
		limit               int
		want                []string
	}{
		{"All", "", "", 0, names},
		{"Limit", "", "", 3, []string{"a", "a1", "a2"}},
		{"Prefix", "a", "", 0, []string{"a", "a1", "a2", "ab"}},
		{"PrefixLimit", "b", "", 1, []string{"b"}},
		{"After", "", "ab", 0, []string{"b", "b1", "c"}},
		{"AfterMissingName", "", "aa", 2, []string{"ab", "b"}},
		{"PrefixAfter", "a", "a1", 0, []string{"a2", "ab"}},
		{"AfterBeforePrefix", "b", "a", 0, []string{"b", "b1"}},
		{"AfterPastPrefix", "a", "b", 0, nil},
		{"NoMatch", "z", "", 0, nil},
		{"AfterLast", "", "c", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.List("bucket", tc.prefix, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q, %q, %d) = %q, want %q", tc.prefix, tc.after, tc.limit, got, tc.want)
			}
		})
	}
	t.Run("MissingBucket", func(t *testing.T) {
		got, err := db.List("nope", "", "", 0)
		if err != nil || len(got) != 0 {
			t.Errorf("List(missing bucket) = %q, %v; want empty", got, err)
		}
	})
}

func TestSnapshotRestore(t *testing.T) {
	src := MustOpenTemp(t)
	MustPut(t, src, 1, "enclaves/a/keys", "k", "from the snapshot")
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A write after the snapshot began is not in it. (It may wait for the
	// release if it has to grow the file's mapping.)
	written := make(chan error, 1)
	go func() {
		sealed, err := src.Seal("enclaves/a/keys", "later", []byte("not in the snapshot"))
		if err == nil {
			err = src.Apply(2, kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "enclaves/a/keys", Name: "later", Value: sealed}}})
		}
		written <- err
	}()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	MustGet(t, src, "enclaves/a/keys", "later")
	if snap.Index() != 1 {
		t.Errorf("Snapshot.Index = %d, want 1", snap.Index())
	}

	t.Run("FreshDB", func(t *testing.T) {
		dst := MustOpenTemp(t)
		MustPut(t, dst, 9, "enclaves/b/keys", "k", "replaced")
		if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatal(err)
		}
		if e := MustGet(t, dst, "enclaves/a/keys", "k"); string(e.Value) != "from the snapshot" || e.Revision != 1 {
			t.Errorf("restored entry = %q@%d", e.Value, e.Revision)
		}
		for _, b := range []string{"enclaves/a/keys/later", "enclaves/b/keys/k"} {
			dir, name := filepath.Split(b)
			if _, err := dst.Get(filepath.Clean(dir), name); !errors.Is(err, kv.ErrNotExist) {
				t.Errorf("Get(%s) after restore = %v, want ErrNotExist", b, err)
			}
		}
		if got := dst.AppliedIndex(); got != 1 {
			t.Errorf("AppliedIndex after restore = %d, want 1", got)
		}
		MustPut(t, dst, 2, "enclaves/a/keys", "after", "writable")
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dst.Path()), "*restore*"))
		if len(matches) != 0 {
			t.Errorf("Restore left temporary files: %q", matches)
		}
	})
	t.Run("ErrWrongRootKey", func(t *testing.T) {
		dst := MustOpen(t, filepath.Join(t.TempDir(), "state.db"), rootKey(2))
		MustPut(t, dst, 4, "b", "e", "kept")
		if err := dst.Restore(bytes.NewReader(buf.Bytes())); !errors.Is(err, storage.ErrWrongRootKey) {
			t.Fatalf("Restore(other root key) = %v, want ErrWrongRootKey", err)
		}
		MustGet(t, dst, "b", "e")
	})
	t.Run("ErrSchema", func(t *testing.T) {
		dst := MustOpenTemp(t)
		MustPut(t, dst, 4, "b", "e", "kept")
		if err := dst.Restore(bytes.NewReader(buf.Bytes()[:buf.Len()/2])); !errors.Is(err, storage.ErrSchema) {
			t.Fatalf("Restore(truncated) = %v, want ErrSchema", err)
		}
		MustGet(t, dst, "b", "e")
	})
}

func TestPlaintextNotInFile(t *testing.T) {
	const (
		plaintext = "known-plaintext-8f3a61c2d9e04b7f"
		name      = "entry-name-visible-5c1e"
	)
	path := filepath.Join(t.TempDir(), "state.db")
	db := MustOpen(t, path, rootKey(1))
	MustPut(t, db, 1, "enclaves/default/keys", name, plaintext)
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = snap.WriteTo(&buf)
	snap.Release()
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, tc := range []struct {
		name string
		data []byte
	}{{"StateFile", MustReadFile(t, path)}, {"Snapshot", buf.Bytes()}} {
		t.Run(tc.name, func(t *testing.T) {
			// Names are stored in clear: finding the name shows the search
			// looks at the right bytes.
			if !bytes.Contains(tc.data, []byte(name)) {
				t.Fatal("the entry name is not in the data; the check below would prove nothing")
			}
			if bytes.Contains(tc.data, []byte(plaintext)) {
				t.Error("the plaintext value is in the data")
			}
		})
	}
}

// TestConcurrentAccess runs reads, writes, snapshots and a restore at once;
// run with -race.
func TestConcurrentAccess(t *testing.T) {
	db := MustOpenTemp(t)
	MustPut(t, db, 1, "b", "e", "v")
	snap, err := db.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var image bytes.Buffer
	snap.WriteTo(&image)
	snap.Release()

	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for r := range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := db.Get("b", "e"); err != nil {
					errc <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				if _, err := db.List("b", "", "", 0); err != nil {
					errc <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			c := kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "w", Name: fmt.Sprint(i), Value: MustSeal(t, db, "w", fmt.Sprint(i), "x")}}}
			if err := db.Apply(uint64(i+2), c); err != nil {
				errc <- err
				return
			}
		}
	})
	wg.Go(func() {
		if err := db.Restore(bytes.NewReader(image.Bytes())); err != nil {
			errc <- err
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestRootKeyCheck(t *testing.T) {
	a, err := storage.RootKeyCheck(rootKey(1))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := storage.RootKeyCheck(rootKey(1))
	c, _ := storage.RootKeyCheck(rootKey(2))
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("RootKeyCheck is not a function of the key alone: %x %x %x", a, b, c)
	}
	if bytes.Contains(a, rootKey(1)[:8]) {
		t.Fatal("the check value contains the root key")
	}
	if _, err := storage.RootKeyCheck([]byte("short")); !errors.Is(err, kv.ErrInvalid) {
		t.Fatalf("RootKeyCheck(short key) = %v, want ErrInvalid", err)
	}
}
