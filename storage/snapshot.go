package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent, point-in-time view of the whole state, held open
// until Release. Writes continue meanwhile, except one that must grow the
// file's memory mapping, which waits for the release; Close and Restore wait
// for it too. Release it promptly.
type Snapshot struct {
	s *snapshot
}

type snapshot struct {
	tx      *bolt.Tx
	index   uint64
	release sync.Once
}

// Snapshot begins a snapshot of the state. The caller must Release it.
func (db *DB) Snapshot() (Snapshot, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", ErrClosed)
	}
	tx, err := db.bolt.Begin(false)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	index := binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(appliedKey))
	return Snapshot{&snapshot{tx: tx, index: index}}, nil
}

// Index returns the applied index the snapshot holds.
func (s Snapshot) Index() uint64 { return s.s.index }

// WriteTo writes the snapshot to w as a complete state file, which Restore
// reads back. Its values are sealed as they are on disk.
func (s Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.s.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("write snapshot: %w", err)
	}
	return n, nil
}

// Release ends the snapshot. It is safe to call more than once.
func (s Snapshot) Release() {
	s.s.release.Do(func() { s.s.tx.Rollback() })
}

// Restore replaces the whole state with a snapshot read from r, atomically:
// the snapshot is written to a temporary file next to the state file, synced
// and verified to open under the same root key before it is renamed over the
// state file. Reads and writes wait while the file is swapped. If the
// snapshot is of another root key it returns an error wrapping
// ErrWrongRootKey, if it is not a state file one wrapping ErrSchema, and the
// state is unchanged.
func (db *DB) Restore(r io.Reader) error {
	tmp, err := db.writeTemp(r)
	if err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	if err := db.verifyFile(tmp, true); err != nil {
		return fmt.Errorf("restore state: snapshot: %w", err)
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return fmt.Errorf("restore state: %w", ErrClosed)
	}
	if err := db.bolt.Close(); err != nil {
		db.bolt = nil
		return fmt.Errorf("restore state: close %s: %w", db.path, err)
	}
	db.bolt = nil
	renameErr := os.Rename(tmp, db.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(db.path))
	}
	// Reopen whichever file is in place now: the snapshot, or the old state
	// if the rename failed.
	b, err := db.openBolt(db.path, false)
	if err != nil {
		return fmt.Errorf("restore state: reopen %s: %w", db.path, errors.Join(renameErr, err))
	}
	db.bolt = b
	if renameErr != nil {
		return fmt.Errorf("restore state: %w", renameErr)
	}
	return nil
}

// writeTemp copies r into a synced temporary file in the directory of the
// state file and returns its name.
func (db *DB) writeTemp(r io.Reader) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(db.path), "."+filepath.Base(db.path)+".restore-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
