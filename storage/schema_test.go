package storage_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage"
)

// TestSchemaUpgrade: a state file of schema 1 (no term of the applied
// entry) opens, keeps its entries and applied index, reads term 0, and is
// upgraded to the current schema, after which applying records the term. A
// file of a newer schema is refused.
func TestSchemaUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db := MustOpen(t, path, rootKey(1))
	MustPut(t, db, 7, "enclaves/default/keys", "k", "v")
	db.Close()
	// Make it the schema 1 layout: version 1, no applied-term.
	MustWriteBolt(t, path, func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], 1)
		if err := meta.Put([]byte("schema"), v[:]); err != nil {
			return err
		}
		return meta.Delete([]byte("applied-term"))
	})

	db = MustOpen(t, path, rootKey(1))
	if index, term := db.Applied(); index != 7 || term != 0 {
		t.Errorf("Applied after the upgrade = %d/%d, want 7/0", index, term)
	}
	if e := MustGet(t, db, "enclaves/default/keys", "k"); string(e.Value) != "v" {
		t.Errorf("entry after the upgrade = %q", e.Value)
	}
	if _, err := db.ApplyBatch([]storage.Op{{Index: 8, Term: 3}}); err != nil {
		t.Fatal(err)
	}
	if index, term := db.Applied(); index != 8 || term != 3 {
		t.Errorf("Applied = %d/%d, want 8/3", index, term)
	}
	db.Close()
	var schema uint32
	MustWriteBolt(t, path, func(tx *bolt.Tx) error {
		schema = binary.BigEndian.Uint32(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return nil
	})
	if schema != storage.SchemaVersion {
		t.Errorf("schema on disk = %d, want %d", schema, storage.SchemaVersion)
	}

	// A newer schema than this build knows is refused, unchanged.
	MustWriteBolt(t, path, func(tx *bolt.Tx) error {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], storage.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v[:])
	})
	if _, err := storage.Open(path, rootKey(1), storage.Options{}); !errors.Is(err, storage.ErrSchema) {
		t.Errorf("Open of a newer schema = %v, want ErrSchema", err)
	}
}
