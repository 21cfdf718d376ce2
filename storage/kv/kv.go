// Package kv is the vocabulary of state changes, shared by every layer that
// builds, carries or applies one: kms builds changes, cluster carries them
// through the raft log, storage checks and applies them. It holds plain types,
// their validation and the precondition rules, and imports only the standard
// library, so that the domain can speak it without importing storage or raft.
//
// The state is a key-value store of buckets. A bucket is named by a path of
// names joined with "/" ("enclaves", "enclaves/default/keys"); an entry by its
// name within the bucket. Every entry has a revision: the raft index of the
// change that wrote it last. A Change is a batch of mutations guarded by
// preconditions; it is applied atomically if every precondition holds, on
// every node the same way, and not at all otherwise.
//
// The numeric values of ConditionKind and MutationKind are part of the raft
// log format and never change.
package kv

import "fmt"

// Entry is a stored value with its revision: the index of the change that
// wrote it last. Revisions only grow.
type Entry struct {
	Value    []byte
	Revision uint64

	// Index is the state's applied index, read in the same transaction as
	// the entry: the state this entry was read from includes every change
	// up to Index and no later one.
	Index uint64
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

	// Code says what a failure of this condition means to the proposer
	// ("key-exists", "enclave-not-found"). It travels with the change
	// through the raft log and comes back in the ConditionError, so the
	// proposer maps a failure by meaning, not by position. At most
	// MaxCodeLen characters of [a-z0-9-]; "" is allowed.
	Code string
}

// Holds reports whether c holds for an entry that exists or not, at
// revision. These are the precondition rules: storage applies them, and so
// does anyone else who checks a condition.
func (c Condition) Holds(exists bool, revision uint64) bool {
	switch c.Kind {
	case MustNotExist:
		return !exists
	case MustExist:
		return exists
	case AtRevision:
		return exists && revision == c.Revision
	}
	return false
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

// Mutation is one write. Whoever builds a change for the raft log seals the
// Value of a Put first (see storage.DB.Seal); kv and storage treat it as
// opaque bytes.
type Mutation struct {
	Kind   MutationKind
	Bucket string
	Name   string
	Value  []byte
}

// ConditionError is the outcome of a change whose precondition failed:
// Index is the position of the first failed one in Change.Require, Code its
// Code. Nothing of the change was applied.
type ConditionError struct {
	Index int
	Code  string
}

func (e *ConditionError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("precondition %d failed", e.Index)
	}
	return fmt.Sprintf("precondition %d failed (%s)", e.Index, e.Code)
}
