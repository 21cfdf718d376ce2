package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage"
)

// The adapters give kms its two small interfaces over storage and cluster.
// They speak kms's types to kms and storage's types to the rest: kms
// imports neither, and storage and cluster know nothing of keys.

// stateReader reads the local replica: kms.Reader over *storage.DB.
type stateReader struct{ db *storage.DB }

var _ kms.Reader = stateReader{}

// Get returns the entry; a missing one is an error wrapping kms.ErrNotExist.
func (s stateReader) Get(ctx context.Context, bucket, name string) (kms.Entry, error) {
	if err := ctx.Err(); err != nil {
		return kms.Entry{}, err
	}
	e, err := s.db.Get(bucket, name)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return kms.Entry{}, fmt.Errorf("%s/%s: %w", bucket, name, kms.ErrNotExist)
		}
		return kms.Entry{}, fmt.Errorf("reading state: %w", err)
	}
	return kms.Entry{Value: e.Value, Revision: e.Revision}, nil
}

// List returns names of bucket; see kms.Reader.
func (s stateReader) List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
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
	Propose(ctx context.Context, c storage.Change) error
}

var _ proposer = (*cluster.Node)(nil)

// stateProposer is kms.Proposer over the cluster node, which seals the
// values and applies the change through raft.
type stateProposer struct{ node proposer }

var _ kms.Proposer = stateProposer{}

// Propose converts c, proposes it and converts the outcome: a failed
// precondition to *kms.ConditionError, no leader to an error wrapping
// kms.ErrUnavailable.
func (p stateProposer) Propose(ctx context.Context, c kms.Change) error {
	err := p.node.Propose(ctx, storageChange(c))
	if err == nil {
		return nil
	}
	var ce *storage.ConditionError
	if errors.As(err, &ce) {
		return &kms.ConditionError{Index: ce.Index}
	}
	if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrClosed) {
		return fmt.Errorf("%w: %w", kms.ErrUnavailable, err)
	}
	return fmt.Errorf("proposing change: %w", err)
}

// storageChange converts a kms change to a storage change. Values are not
// copied: the cluster node seals them into new buffers.
func storageChange(c kms.Change) storage.Change {
	sc := storage.Change{
		Require: make([]storage.Condition, len(c.Require)),
		Apply:   make([]storage.Mutation, len(c.Apply)),
	}
	for i, r := range c.Require {
		sc.Require[i] = storage.Condition{
			Kind:     conditionKind(r.Kind),
			Bucket:   r.Bucket,
			Name:     r.Name,
			Revision: r.Revision,
		}
	}
	for i, m := range c.Apply {
		sc.Apply[i] = storage.Mutation{
			Kind:   mutationKind(m.Kind),
			Bucket: m.Bucket,
			Name:   m.Name,
			Value:  m.Value,
		}
	}
	return sc
}

// conditionKind maps by name, not by number, so that the two enumerations
// may evolve apart; an unknown kind maps to 0, which storage refuses.
func conditionKind(k kms.ConditionKind) storage.ConditionKind {
	switch k {
	case kms.MustNotExist:
		return storage.MustNotExist
	case kms.MustExist:
		return storage.MustExist
	case kms.AtRevision:
		return storage.AtRevision
	}
	return 0
}

func mutationKind(k kms.MutationKind) storage.MutationKind {
	switch k {
	case kms.Put:
		return storage.Put
	case kms.Delete:
		return storage.Delete
	case kms.DeleteBucket:
		return storage.DeleteBucket
	}
	return 0
}
