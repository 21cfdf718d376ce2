package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage/kv"
)

// Apply applies the change c as the raft log entry index, in one
// transaction. The values of its Puts are sealed (see Seal) and stored as
// they are, with index as their revision.
//
// An index at or below AppliedIndex was applied before: Apply does nothing
// and returns nil. Otherwise the applied index advances to index whatever the
// outcome, since the log entry is consumed: if a precondition fails, Apply
// writes nothing else and returns a *kv.ConditionError for the first failed
// one; if c does not validate, an error wrapping kv.ErrInvalid. Only a failure
// to write leaves the state, applied index included, as it was.
func (db *DB) Apply(index uint64, c kv.Change) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return fmt.Errorf("apply %d: %w", index, ErrClosed)
	}
	var result error
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if index <= binary.BigEndian.Uint64(meta.Get(appliedKey)) {
			return nil
		}
		var err error
		result, err = apply(tx.Bucket(dataBucket), index, c)
		if err != nil {
			return err
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], index)
		if err := meta.Put(appliedKey, v[:]); err != nil {
			return fmt.Errorf("record applied index: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %d: %w", index, err)
	}
	var ce *kv.ConditionError
	if result != nil && !errors.As(result, &ce) {
		return fmt.Errorf("apply %d: %w", index, result)
	}
	return result // a *kv.ConditionError as is, so that callers can errors.As it unwrapped
}

// apply checks and applies c within data. result is the outcome for the
// caller (a rejected change); err is a write failure that aborts the
// transaction.
func apply(data *bolt.Bucket, index uint64, c kv.Change) (result, err error) {
	if err := c.Validate(); err != nil {
		return err, nil
	}
	for i, r := range c.Require {
		if !holds(data, r) {
			return &kv.ConditionError{Index: i, Code: r.Code}, nil
		}
	}
	for i, m := range c.Apply {
		if err := mutate(data, index, m); err != nil {
			return nil, fmt.Errorf("mutation %d: %w", i, err)
		}
	}
	return nil, nil
}

// holds reports whether r holds for the entry it names, by kv's rules.
func holds(data *bolt.Bucket, r kv.Condition) bool {
	var v []byte
	if b := data.Bucket([]byte(r.Bucket)); b != nil {
		v = b.Get([]byte(r.Name))
	}
	var revision uint64
	if len(v) >= revisionSize {
		revision = binary.BigEndian.Uint64(v)
	}
	return r.Holds(v != nil, revision)
}

func mutate(data *bolt.Bucket, index uint64, m kv.Mutation) error {
	switch m.Kind {
	case kv.Put:
		b, err := data.CreateBucketIfNotExists([]byte(m.Bucket))
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", m.Bucket, err)
		}
		v := make([]byte, revisionSize+len(m.Value))
		binary.BigEndian.PutUint64(v, index)
		copy(v[revisionSize:], m.Value)
		if err := b.Put([]byte(m.Name), v); err != nil {
			return fmt.Errorf("put %s/%s: %w", m.Bucket, m.Name, err)
		}
	case kv.Delete:
		if b := data.Bucket([]byte(m.Bucket)); b != nil {
			if err := b.Delete([]byte(m.Name)); err != nil {
				return fmt.Errorf("delete %s/%s: %w", m.Bucket, m.Name, err)
			}
		}
	case kv.DeleteBucket:
		return deleteBuckets(data, m.Bucket)
	}
	return nil
}

// deleteBuckets removes bucket and every bucket below it ("bucket/..."), but
// not its siblings that merely share the prefix ("bucketX").
func deleteBuckets(data *bolt.Bucket, bucket string) error {
	below := []byte(bucket + "/")
	var doomed [][]byte
	c := data.Cursor()
	for k, _ := c.Seek([]byte(bucket)); k != nil && bytes.HasPrefix(k, []byte(bucket)); k, _ = c.Next() {
		if string(k) == bucket || bytes.HasPrefix(k, below) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := data.DeleteBucket(k); err != nil {
			return fmt.Errorf("delete bucket %s: %w", k, err)
		}
	}
	return nil
}
