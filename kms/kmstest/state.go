// Package kmstest provides a state for tests of kms and of the packages that
// use it: a kms.Reader and kms.Proposer over a real storage.DB in a temporary
// directory, without raft. Changes are sealed and applied exactly as the raft
// FSM applies them, so the tests run on the one copy of the precondition
// rules (kv.Condition.Holds, applied by storage).
package kmstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// State is a kms.Reader and kms.Proposer over a storage.DB. Each Propose is
// applied at the next log index, one at a time. It is safe for concurrent
// use.
type State struct {
	tb testing.TB
	db *storage.DB

	mu          sync.Mutex // serialises Propose, as the raft log does
	index       uint64     // the index of the last change proposed
	unavailable bool       // makes Propose fail as if there were no leader
	onApply     []func(index uint64, changed []kv.Mutation)
}

var (
	_ kms.Reader   = (*State)(nil)
	_ kms.Proposer = (*State)(nil)
)

// New returns an empty State whose state file lives in tb.TempDir(), sealed
// under a random root key. The file is closed when tb ends.
func New(tb testing.TB) *State {
	tb.Helper()
	rootKey := make([]byte, storage.RootKeySize)
	rand.Read(rootKey)
	db, err := storage.Open(filepath.Join(tb.TempDir(), "state.db"), rootKey, storage.Options{})
	clear(rootKey)
	if err != nil {
		tb.Fatalf("kmstest: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return &State{tb: tb, db: db}
}

// DB returns the state file under s.
func (s *State) DB() *storage.DB { return s.db }

// SetUnavailable makes every following Propose fail with an error that
// wraps kms.ErrUnavailable (on true) or work again (on false).
func (s *State) SetUnavailable(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = v
}

// Get returns the entry, unsealed. A missing one is an error wrapping
// kv.ErrNotExist.
func (s *State) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	return s.db.Get(bucket, name)
}

// List returns up to limit names of bucket with prefix after after; see
// kms.Reader.
func (s *State) List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	return s.db.List(bucket, prefix, after, limit)
}

// Propose seals the values of c's Puts and applies it at the next index, as
// the raft FSM would: a failed precondition is a *kv.ConditionError, a
// malformed change an error wrapping kv.ErrInvalid.
func (s *State) Propose(ctx context.Context, c kv.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable {
		return fmt.Errorf("proposing: %w", kms.ErrUnavailable)
	}
	sealed := kv.Change{Require: c.Require, Apply: slices.Clone(c.Apply)}
	for i, m := range sealed.Apply {
		if m.Kind != kv.Put {
			continue
		}
		v, err := s.db.Seal(m.Bucket, m.Name, m.Value)
		if err != nil {
			return fmt.Errorf("proposing: mutation %d: %w", i, err)
		}
		sealed.Apply[i].Value = v
	}
	s.index++
	if err := s.db.Apply(s.index, sealed); err != nil {
		return err
	}
	// As the raft FSM: tell the appliers' subscribers before the
	// proposer learns that the change is applied.
	for _, f := range s.onApply {
		f(s.index, c.Apply)
	}
	return nil
}

// OnApply makes every following applied change call f, as the raft FSM
// calls cluster.Config.OnApply, before Propose returns: pass a
// kms.Service's Invalidate.
func (s *State) OnApply(f func(index uint64, changed []kv.Mutation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onApply = append(s.onApply, f)
}

// Len returns the number of entries in bucket.
func (s *State) Len(bucket string) int {
	names, err := s.db.List(bucket, "", "", 0)
	if err != nil {
		s.tb.Errorf("kmstest: %v", err)
	}
	return len(names)
}
