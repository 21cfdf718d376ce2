package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// fsm applies committed raft commands to the state file.
type fsm struct {
	store  *storage.DB
	logger *slog.Logger
}

var _ raft.FSM = (*fsm)(nil)

// Apply returns the outcome of the command as the future's response: nil or
// an error (a *kv.ConditionError as is). It never panics on bad input:
// a command it cannot read is logged and answered with the error, and the
// node goes on. A state file that cannot be written stops the node.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		f.logger.Error("Skipped a raft command this node cannot read; is a newer minkms version in the cluster?",
			slog.Uint64("index", l.Index), slog.Any("error", err))
		return fmt.Errorf("raft log entry %d: %w", l.Index, err)
	}
	switch cmd.Type {
	case CommandChange:
		err = f.store.Apply(l.Index, cmd.Change)
	default: // DecodeCommand returns only types this switch knows
		err = fmt.Errorf("raft log entry %d: %w: unhandled type %d", l.Index, ErrCommand, cmd.Type)
	}
	var ce *kv.ConditionError
	if err != nil && !errors.As(err, &ce) && !errors.Is(err, kv.ErrInvalid) {
		// The state file could not be written. Going on would leave this
		// node without a committed change the others have, and every later
		// revision would differ. Stop instead: the applied index did not
		// advance, so after a restart raft replays this entry from the log.
		f.logger.Error("Failed to apply a committed raft command to the state file; stopping so that a restart replays it",
			slog.Uint64("index", l.Index), slog.Any("error", err))
		panic(fmt.Sprintf("minkms: applying raft log entry %d to the state file: %v", l.Index, err))
	}
	return err
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.store.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("begin FSM snapshot: %w", err)
	}
	return fsmSnapshot{snap}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("restore FSM snapshot: %w", err)
	}
	return nil
}

// fsmSnapshot writes a consistent read transaction of the state file.
type fsmSnapshot struct {
	snap storage.Snapshot
}

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist FSM snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist FSM snapshot: %w", err)
	}
	return nil
}

func (s fsmSnapshot) Release() { s.snap.Release() }
