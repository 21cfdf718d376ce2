package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage/kv"
)

// Op is one committed raft log entry, as ApplyBatch applies it.
type Op struct {
	Index uint64
	Term  uint64
	// Change is the state change of the entry, with sealed values; nil for
	// an entry that changes no state (a cluster configuration), which only
	// advances the applied index.
	Change *kv.Change
}

// ApplyBatch applies ops in order, in one transaction, and returns one
// result per op: nil, a *kv.ConditionError for a change whose precondition
// failed (it wrote nothing), or an error wrapping kv.ErrInvalid for one that is
// not well formed. Either way the entry is consumed and the applied index and
// term advance to the last op's.
//
// Ops at or below AppliedIndex were applied before (a replay after a
// restart) and are skipped with a nil result. Whether anything is left to do
// is decided by a read, so that replaying a log that is already applied
// writes nothing at all.
//
// The returned error is a failure to write: then nothing of the batch is
// applied and the applied index is as it was.
func (db *DB) ApplyBatch(ops []Op) ([]error, error) {
	results := make([]error, len(ops))
	if len(ops) == 0 {
		return results, nil
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return nil, fmt.Errorf("apply batch: %w", ErrClosed)
	}
	var applied uint64
	if err := db.contained(func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			applied = binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(appliedKey))
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	if ops[len(ops)-1].Index <= applied {
		return results, nil
	}
	db.writes.Add(1)
	err := db.contained(func() error {
		return db.bolt.Update(func(tx *bolt.Tx) error {
			meta, data := tx.Bucket(metaBucket), tx.Bucket(dataBucket)
			var last Op
			for i, op := range ops {
				if op.Index <= applied {
					continue
				}
				last = op
				if op.Change == nil {
					continue
				}
				result, err := apply(data, op.Index, *op.Change)
				if err != nil {
					return fmt.Errorf("entry %d: %w", op.Index, err)
				}
				results[i] = result
			}
			return writeApplied(meta, last.Index, last.Term)
		})
	})
	if err != nil {
		clear(results)
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	for i, r := range results {
		var ce *kv.ConditionError
		if r != nil && !errors.As(r, &ce) {
			results[i] = fmt.Errorf("apply %d: %w", ops[i].Index, r)
		}
	}
	return results, nil
}

// writeApplied records the index and term of the last entry applied.
func writeApplied(meta *bolt.Bucket, index, term uint64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], index)
	if err := meta.Put(appliedKey, v[:]); err != nil {
		return fmt.Errorf("record applied index: %w", err)
	}
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], term)
	if err := meta.Put(appliedTermKey, t[:]); err != nil {
		return fmt.Errorf("record applied term: %w", err)
	}
	return nil
}

// Writes returns how many write transactions ApplyBatch has run on this
// DB: replaying entries that were applied before runs none.
func (db *DB) Writes() uint64 { return db.writes.Load() }

// Applied returns the index and term of the last raft entry applied to the
// state (0, 0 for a fresh state). A state written before terms were recorded
// reports term 0.
func (db *DB) Applied() (index, term uint64) {
	db.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		index = binary.BigEndian.Uint64(meta.Get(appliedKey))
		if v := meta.Get(appliedTermKey); len(v) == 8 {
			term = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return index, term
}
