package kms

import (
	"context"
	"errors"
	"fmt"
)

// The replicated state is a key-value store of buckets. A bucket is named by
// a path of validated names joined with "/" ("enclaves", "enclaves/default/keys");
// an entry by its name within the bucket. kms reads the state through a Reader
// and changes it only by proposing a Change: a batch of mutations guarded by
// preconditions that is applied atomically, on every node the same way.
//
// Values handed to Propose and returned by Get are plaintext here: the adapter
// seals them (AES-256-GCM, bucket and name as associated data) before they are
// proposed, so nothing secret reaches the raft log or the state file in clear.

// Entry is a stored value with its revision: the index of the change that
// wrote it last. Revisions only grow.
type Entry struct {
	Value    []byte
	Revision uint64
}

// Reader is a read view of the state.
type Reader interface {
	// Get returns the entry name of bucket. If there is no such entry, it
	// returns an error that wraps ErrNotExist. The Value is the caller's:
	// kms zeroes those that hold key material.
	Get(ctx context.Context, bucket, name string) (Entry, error)

	// List returns up to limit names of bucket, in ascending order, that
	// start with prefix and sort strictly after the name after ("" for the
	// start). A bucket that does not exist is empty.
	List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error)
}

// Proposer applies changes to the state.
type Proposer interface {
	// Propose applies c atomically once its preconditions hold and returns
	// when it is applied to the local state, so that a following Get sees
	// it. If a precondition fails, nothing is applied and it returns a
	// *ConditionError. If no leader can be reached it returns an error that
	// wraps ErrUnavailable. It keeps no reference to the values of c once
	// it returns: kms zeroes those that hold key material.
	Propose(ctx context.Context, c Change) error
}

// ErrNotExist is returned (wrapped) by Reader.Get for a missing entry.
var ErrNotExist = errors.New("entry does not exist")

// ErrUnavailable is returned (wrapped) when the state cannot be changed now,
// for example because there is no raft leader.
var ErrUnavailable = errors.New("state unavailable")

// Change is a batch of mutations applied atomically if every precondition holds.
type Change struct {
	Require []Condition
	Apply   []Mutation
}

// ConditionKind says what a Condition requires of an entry.
type ConditionKind uint8

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

const (
	Put          MutationKind = iota + 1 // set Bucket/Name to Value
	Delete                               // remove Bucket/Name (no error if absent)
	DeleteBucket                         // remove bucket Bucket and every bucket below it ("Bucket/...")
)

// Mutation is one write.
type Mutation struct {
	Kind   MutationKind
	Bucket string
	Name   string
	Value  []byte // plaintext; sealed by the adapter before it is proposed
}

// ConditionError is returned by Propose when a precondition failed; Index is
// the position of the first failed one in Change.Require.
type ConditionError struct {
	Index int
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("precondition %d failed", e.Index)
}
