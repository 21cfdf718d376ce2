package storage

import (
	"fmt"
	"strings"
)

// Entry is a stored value with its revision: the index of the change that
// wrote it last. Revisions only grow.
type Entry struct {
	Value    []byte
	Revision uint64
}

// Change is a batch of mutations applied atomically if every precondition holds.
type Change struct {
	Require []Condition
	Apply   []Mutation
}

// ConditionKind says what a Condition requires of an entry.
type ConditionKind uint8

// The kinds of condition. Their values are part of the raft log format and
// never change.
const (
	MustNotExist ConditionKind = iota + 1 // the entry does not exist
	MustExist                             // the entry exists
	AtRevision                            // the entry exists at exactly Revision
)

// Condition is a precondition on one entry.
type Condition struct {
	Kind     ConditionKind
	Bucket   string
	Name     string
	Revision uint64 // for AtRevision
}

// MutationKind says what a Mutation does.
type MutationKind uint8

// The kinds of mutation. Their values are part of the raft log format and
// never change.
const (
	Put          MutationKind = iota + 1 // set Bucket/Name to Value
	Delete                               // remove Bucket/Name (no error if absent)
	DeleteBucket                         // remove bucket Bucket and every bucket below it ("Bucket/...")
)

// Mutation is one write. In a Change given to Apply, the Value of a Put is
// sealed (see DB.Seal); storage treats it as opaque bytes.
type Mutation struct {
	Kind   MutationKind
	Bucket string
	Name   string
	Value  []byte
}

// Validate reports whether c is well formed: known kinds, valid bucket paths
// and entry names of at most MaxPathLen bytes, a value for every Put. It
// returns an error wrapping ErrInvalid otherwise. Apply rejects a change that
// does not validate.
func (c Change) Validate() error {
	for i, r := range c.Require {
		switch r.Kind {
		case MustNotExist, MustExist, AtRevision:
		default:
			return fmt.Errorf("%w: condition %d: unknown kind %d", ErrInvalid, i, r.Kind)
		}
		if err := validEntry(r.Bucket, r.Name); err != nil {
			return fmt.Errorf("condition %d: %w", i, err)
		}
	}
	for i, m := range c.Apply {
		var err error
		switch m.Kind {
		case Put:
			err = validEntry(m.Bucket, m.Name)
			if err == nil && len(m.Value) == 0 {
				err = fmt.Errorf("%w: no value", ErrInvalid)
			}
		case Delete:
			err = validEntry(m.Bucket, m.Name)
		case DeleteBucket:
			err = validBucket(m.Bucket)
			if err == nil && m.Name != "" {
				err = fmt.Errorf("%w: a bucket deletion names no entry", ErrInvalid)
			}
		default:
			err = fmt.Errorf("%w: unknown kind %d", ErrInvalid, m.Kind)
		}
		if err != nil {
			return fmt.Errorf("mutation %d: %w", i, err)
		}
	}
	return nil
}

// MaxPathLen is the longest bucket path and the longest entry name, in bytes.
// bbolt refuses longer keys with a write error, which the FSM would have to
// treat as fatal on every node and at every replay; refusing them here makes
// such a change an ordinary invalid one.
const MaxPathLen = 1024

// validBucket accepts a path of non-empty names joined with "/" that contains
// no NUL byte (NUL separates bucket and name in the associated data).
func validBucket(bucket string) error {
	if bucket == "" {
		return fmt.Errorf("%w: empty bucket path", ErrInvalid)
	}
	if len(bucket) > MaxPathLen {
		return fmt.Errorf("%w: bucket path of %d bytes, more than %d", ErrInvalid, len(bucket), MaxPathLen)
	}
	if strings.IndexByte(bucket, 0) >= 0 {
		return fmt.Errorf("%w: bucket path %q contains a NUL byte", ErrInvalid, bucket)
	}
	for _, part := range strings.Split(bucket, "/") {
		if part == "" {
			return fmt.Errorf("%w: bucket path %q has an empty name", ErrInvalid, bucket)
		}
	}
	return nil
}

func validEntry(bucket, name string) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: empty entry name in bucket %q", ErrInvalid, bucket)
	}
	if len(name) > MaxPathLen {
		return fmt.Errorf("%w: entry name of %d bytes in bucket %q, more than %d", ErrInvalid, len(name), bucket, MaxPathLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: entry name %q contains a NUL byte", ErrInvalid, name)
	}
	return nil
}
