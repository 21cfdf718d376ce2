// Package kmstest provides an in-memory state for tests of kms and of the
// packages that use it: a kms.Reader and kms.Proposer with the
// precondition semantics of the replicated state, without raft or bbolt.
package kmstest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/minkms/minkms/kms"
)

// State is an in-memory kms.Reader and kms.Proposer. Changes apply
// atomically under one lock; revisions are the count of applied changes.
// It is safe for concurrent use. The zero value is an empty state.
type State struct {
	mu      sync.Mutex
	buckets map[string]map[string]kms.Entry
	rev     uint64
	// unavailable, if set, makes Propose fail as if there were no leader.
	unavailable bool
}

var (
	_ kms.Reader   = (*State)(nil)
	_ kms.Proposer = (*State)(nil)
)

// NewState returns an empty State.
func NewState() *State { return new(State) }

// SetUnavailable makes every following Propose fail with an error that
// wraps kms.ErrUnavailable (on true) or work again (on false).
func (s *State) SetUnavailable(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = v
}

// Get returns a copy of the entry.
func (s *State) Get(ctx context.Context, bucket, name string) (kms.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.buckets[bucket][name]
	if !ok {
		return kms.Entry{}, fmt.Errorf("%s/%s: %w", bucket, name, kms.ErrNotExist)
	}
	return kms.Entry{Value: bytes.Clone(e.Value), Revision: e.Revision}, nil
}

// List returns up to limit names of bucket with prefix after after.
func (s *State) List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.buckets[bucket] {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if limit >= 0 && len(names) > limit {
		names = names[:limit]
	}
	return names, nil
}

// Propose checks c's preconditions and applies it atomically.
func (s *State) Propose(ctx context.Context, c kms.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable {
		return fmt.Errorf("proposing: %w", kms.ErrUnavailable)
	}
	for i, cond := range c.Require {
		e, ok := s.buckets[cond.Bucket][cond.Name]
		var holds bool
		switch cond.Kind {
		case kms.MustNotExist:
			holds = !ok
		case kms.MustExist:
			holds = ok
		case kms.AtRevision:
			holds = ok && e.Revision == cond.Revision
		default:
			return fmt.Errorf("precondition %d: unknown kind %d", i, cond.Kind)
		}
		if !holds {
			return &kms.ConditionError{Index: i}
		}
	}
	for i, m := range c.Apply {
		if m.Kind < kms.Put || m.Kind > kms.DeleteBucket {
			return fmt.Errorf("mutation %d: unknown kind %d", i, m.Kind)
		}
	}
	s.rev++
	if s.buckets == nil {
		s.buckets = make(map[string]map[string]kms.Entry)
	}
	for _, m := range c.Apply {
		switch m.Kind {
		case kms.Put:
			b := s.buckets[m.Bucket]
			if b == nil {
				b = make(map[string]kms.Entry)
				s.buckets[m.Bucket] = b
			}
			b[m.Name] = kms.Entry{Value: bytes.Clone(m.Value), Revision: s.rev}
		case kms.Delete:
			delete(s.buckets[m.Bucket], m.Name)
		case kms.DeleteBucket:
			for name := range s.buckets {
				if name == m.Bucket || strings.HasPrefix(name, m.Bucket+"/") {
					delete(s.buckets, name)
				}
			}
		}
	}
	return nil
}

// Len returns the number of entries in bucket.
func (s *State) Len(bucket string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buckets[bucket])
}
