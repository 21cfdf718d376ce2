package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// The adapters give kms its two small interfaces over storage and cluster.
// All of them speak the types of package kv, so the adapters convert
// nothing: they add the caller's context to reads and give "no leader" its
// one name, kms.ErrUnavailable.

// replica is what the reader asks of the cluster node: whether the local
// replica may be served, and a way to catch up with the leader.
type replica interface {
	// Fresh returns nil while this node may serve reads from its replica.
	Fresh() error
	// Sync returns once this node has applied every write acknowledged
	// anywhere before the call.
	Sync(ctx context.Context) error
}

var _ replica = (*cluster.Node)(nil)

// stateReader reads the local replica: kms.Reader over *storage.DB.
//
// A node cut off from the leader for longer than cluster.max_stale serves
// nothing (it may hold revoked identities and deleted keys). A miss is
// looked up again after catching up with the leader (Sync), so that a key,
// identity or policy created through another node is found here as soon
// as its create returned there; with no leader to catch up with the answer
// is "unavailable", never "does not exist".
type stateReader struct {
	db   *storage.DB
	node replica // nil: a plain local reader (tests)
}

var (
	_ kms.Reader       = stateReader{}
	_ kms.ReadyChecker = stateReader{}
)

// Get returns the entry; a missing one is an error wrapping kv.ErrNotExist.
func (s stateReader) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	if err := s.ready(ctx); err != nil {
		return kv.Entry{}, err
	}
	e, err := s.db.Get(bucket, name)
	if errors.Is(err, kv.ErrNotExist) && s.node != nil {
		if err := s.node.Sync(ctx); err != nil {
			return kv.Entry{}, fmt.Errorf("%w: looking up %s/%s after a miss: %w", kms.ErrUnavailable, bucket, name, err)
		}
		e, err = s.db.Get(bucket, name)
	}
	if err != nil {
		return kv.Entry{}, fmt.Errorf("reading state: %w", err)
	}
	return e, nil
}

// Ready is kms.ReadyChecker: kms's cache serves nothing while the replica
// may not be served.
func (s stateReader) Ready(ctx context.Context) error { return s.ready(ctx) }

func (s stateReader) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.node == nil {
		return nil
	}
	if err := s.node.Fresh(); err != nil {
		return fmt.Errorf("%w: %w", kms.ErrUnavailable, err)
	}
	return nil
}

// List returns names of bucket; see kms.Reader.
func (s stateReader) List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	names, err := s.db.List(bucket, prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing state: %w", err)
	}
	return names, nil
}

// proposer is the raft member the changes of kms go through.
type proposer interface {
	Propose(ctx context.Context, c kv.Change) error
}

var _ proposer = (*cluster.Node)(nil)

// stateProposer is kms.Proposer over the cluster node, which seals the
// values and applies the change through raft.
type stateProposer struct{ node proposer }

var _ kms.Proposer = stateProposer{}

// Propose proposes c. A failed precondition comes back as the node's
// *kv.ConditionError, unwrapped; no leader (or a node shutting down) as an
// error wrapping kms.ErrUnavailable.
func (p stateProposer) Propose(ctx context.Context, c kv.Change) error {
	err := p.node.Propose(ctx, c)
	var ce *kv.ConditionError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrClosed):
		return fmt.Errorf("%w: %w", kms.ErrUnavailable, err)
	}
	return fmt.Errorf("proposing change: %w", err)
}
