package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage/kv"
)

// proposerFunc is a proposer that answers with a function.
type proposerFunc func(context.Context, kv.Change) error

func (f proposerFunc) Propose(ctx context.Context, c kv.Change) error { return f(ctx, c) }

// TestStateProposerErrors: the adapter passes a failed precondition through
// with its code and gives "no leader" the one name kms knows.
func TestStateProposerErrors(t *testing.T) {
	errDisk := errors.New("disk full")
	for _, tc := range []struct {
		name        string
		node        error
		unavailable bool
	}{
		{"NoLeader", fmt.Errorf("propose: %w: no leader yet", cluster.ErrNoLeader), true},
		{"Closed", fmt.Errorf("propose: %w", cluster.ErrClosed), true},
		{"Other", errDisk, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := stateProposer{proposerFunc(func(context.Context, kv.Change) error { return tc.node })}
			err := p.Propose(context.Background(), kv.Change{})
			if got := errors.Is(err, kms.ErrUnavailable); got != tc.unavailable {
				t.Errorf("Propose = %v; wraps kms.ErrUnavailable: %v, want %v", err, got, tc.unavailable)
			}
			if !errors.Is(err, tc.node) {
				t.Errorf("Propose = %v, does not keep the cause %v", err, tc.node)
			}
		})
	}
	t.Run("ConditionError", func(t *testing.T) {
		want := &kv.ConditionError{Index: 1, Code: "key-exists"}
		p := stateProposer{proposerFunc(func(context.Context, kv.Change) error { return want })}
		var ce *kv.ConditionError
		if err := p.Propose(context.Background(), kv.Change{}); !errors.As(err, &ce) || *ce != *want {
			t.Errorf("Propose = %v, want %v", err, want)
		}
	})
}
