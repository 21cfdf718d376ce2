package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage/kv"
)

// RootKeyCheckValue returns the check value of the root key the state is
// sealed under (see RootKeyCheck). It is not secret.
func (db *DB) RootKeyCheckValue() []byte { return bytes.Clone(db.check) }

// Copy writes a consistent copy of the whole state to w, as Snapshot's
// WriteTo does, and returns the applied index and term of the copy and its
// size. It holds a read transaction for as long as w takes: give it a local
// file, not a network connection.
func (db *DB) Copy(w io.Writer) (index, term uint64, n int64, err error) {
	snap, err := db.Snapshot()
	if err != nil {
		return 0, 0, 0, err
	}
	defer snap.Release()
	if v := snap.s.tx.Bucket(metaBucket).Get(appliedTermKey); len(v) == 8 {
		term = binary.BigEndian.Uint64(v)
	}
	n, err = snap.WriteTo(w)
	return snap.Index(), term, n, err
}

// RewriteForRestore prepares the state file at path, a copy of another
// cluster's state, to be restored into this one as a raft snapshot at
// index and term: it checks that the file is a complete state file sealed
// under db's root key (an error wrapping ErrWrongRootKey or ErrSchema if
// not, and the file is unchanged), applies c (whose Put values are sealed
// with Seal) and records index and term as the applied ones, so that the
// entries raft appends after the snapshot are applied, not skipped.
func (db *DB) RewriteForRestore(path string, index, term uint64, c kv.Change) error {
	if err := db.verifyFile(path, true); err != nil {
		return fmt.Errorf("rewrite %s for restore: %w", path, err)
	}
	b, err := db.openBolt(path, false)
	if err != nil {
		return fmt.Errorf("rewrite %s for restore: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		result, err := apply(tx.Bucket(dataBucket), index, c)
		if err == nil {
			err = result
		}
		if err != nil {
			return err
		}
		return writeApplied(tx.Bucket(metaBucket), index, term)
	})
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rewrite %s for restore: %w", path, err)
	}
	return nil
}
