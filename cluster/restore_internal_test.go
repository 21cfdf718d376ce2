package cluster

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestRestoreGuard: while a restore is armed, raft may create its own
// snapshots below the restore's index, but the restore's snapshot only at
// the predicted index and term; a refusal is reported once.
func TestRestoreGuard(t *testing.T) {
	g := &restoreGuard{SnapshotStore: raft.NewInmemSnapshotStore()}
	create := func(index, term uint64) error {
		sink, err := g.Create(raft.SnapshotVersionMax, index, term, raft.Configuration{}, 1, nil)
		if err == nil {
			sink.Cancel()
		}
		return err
	}
	if err := create(500, 9); err != nil {
		t.Fatalf("Create while not armed: %v", err)
	}

	g.arm(100, 3)
	if err := create(40, 3); err != nil {
		t.Errorf("Create of an FSM snapshot below the restore: %v", err)
	}
	if err := create(100, 3); err != nil {
		t.Errorf("Create at the predicted index and term: %v", err)
	}
	if g.disarm() {
		t.Error("disarm reports a refusal where there was none")
	}

	for _, c := range []struct{ index, term uint64 }{{101, 3}, {100, 4}} {
		g.arm(100, 3)
		if err := create(c.index, c.term); !errors.Is(err, errRestoreMoved) {
			t.Errorf("Create(%d, %d) with 100, 3 predicted = %v, want errRestoreMoved", c.index, c.term, err)
		}
		if !g.disarm() {
			t.Errorf("disarm after Create(%d, %d) does not report the refusal", c.index, c.term)
		}
	}
}
