package storage

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckFile checks the consistency of every page of the bbolt file at path
// (a state file, a raft snapshot's state.bin, or raft's own raft.db),
// read-only. Damage is reported as an error wrapping ErrCorrupt with what
// bbolt found.
//
// bbolt's checker panics on some kinds of damage, in a goroutine of its own
// where no recover reaches, and a damaged page can fault the memory
// mapping: call CheckFile in a process of its own (`minkms admin check`),
// never inside a node that should survive the answer.
func CheckFile(path string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: reading it failed on a damaged page: %v", ErrCorrupt, path, r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return err
		}
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: %s is truncated: %d of %d bytes", ErrCorrupt, path, fi.Size(), tx.Size())
		}
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, errors.Join(errs...))
		}
		return nil
	})
}

// contained runs fn, turning a panic or a memory fault, bbolt's answer to
// some damaged pages, into an error wrapping ErrCorrupt, so that a damaged
// state file fails requests and stops the FSM with a reason instead of
// crashing the node (and every restart after it).
func (db *DB) contained(fn func() error) error { return contained(db.path, fn) }

func contained(path string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s is damaged: %v; stop the node and run minkms admin check", ErrCorrupt, path, r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return fn()
}
