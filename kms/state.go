package kms

import (
	"context"
	"errors"

	"github.com/minkms/minkms/storage/kv"
)

// The replicated state is a key-value store of buckets, described in the
// terms of package kv, which every layer shares: a bucket is named by a path
// of validated names joined with "/" ("enclaves", "enclaves/default/keys"); an
// entry by its name within the bucket. kms reads the state through a Reader
// and changes it only by proposing a kv.Change: a batch of mutations guarded
// by preconditions that is applied atomically, on every node the same way.
//
// Values handed to Propose and returned by Get are plaintext here: the
// proposer seals them (AES-256-GCM, bucket and name as associated data)
// before they are proposed, so nothing secret reaches the raft log or the
// state file in clear.

// Reader is a read view of the state.
type Reader interface {
	// Get returns the entry name of bucket. If there is no such entry, it
	// returns an error that wraps kv.ErrNotExist. The Value is the caller's:
	// kms zeroes those that hold key material.
	Get(ctx context.Context, bucket, name string) (kv.Entry, error)

	// List returns up to limit names of bucket, in ascending order, that
	// start with prefix and sort strictly after the name after ("" for the
	// start); limit <= 0 means no limit. A bucket that does not exist is
	// empty.
	List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error)
}

// ReadyChecker is an optional interface of a Reader: Ready returns nil
// while the state may be served, and an error (wrapping ErrUnavailable if
// no leader can be reached) while it must not, as the Reader's own Get and
// List would. A Service with a cache asks it before every answer from the
// cache, so that a node cut off from its cluster serves nothing it cached.
type ReadyChecker interface {
	Ready(ctx context.Context) error
}

// Proposer applies changes to the state.
type Proposer interface {
	// Propose applies c atomically once its preconditions hold and returns
	// when it is applied to the local state, so that a following Get sees
	// it. If a precondition fails, nothing is applied and it returns a
	// *kv.ConditionError with the failed condition's Code. If no leader can
	// be reached it returns an error that wraps ErrUnavailable. It keeps no
	// reference to the values of c once it returns: kms zeroes those that
	// hold key material.
	Propose(ctx context.Context, c kv.Change) error
}

// ErrUnavailable is returned (wrapped) by a Proposer when the state cannot be
// changed now: there is no leader, or the node is shutting down. It is the
// one name of "no leader" below kms; the server maps the cluster's own errors
// to it, and kms answers it with ErrNoLeader.
var ErrUnavailable = errors.New("state unavailable")
