package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// fsm applies committed raft entries to the state file, a batch at a time
// in one bbolt transaction, and tracks the index it has applied so that
// callers can wait for it.
//
// The index it tracks counts the entries it sees: commands and cluster
// configurations. Raft's own no-op and barrier entries never reach an FSM,
// so the index is compared only with other FSM indexes (the leader's, in a
// read index), never with raft's commit index.
type fsm struct {
	store  *storage.DB
	logger *slog.Logger

	applied *indexWatch

	// onApply and onRestore: see Config.OnApply and Config.OnRestore.
	onApply   func(index uint64, changed []kv.Mutation)
	onRestore func(index uint64)

	// stop is closed when the node shuts down, so that a halted FSM returns
	// and raft can stop.
	stop <-chan struct{}

	mu     sync.Mutex
	halted error // why the FSM stopped applying; nil while it works
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.BatchingFSM = (*fsm)(nil)
)

// writeRetry is how long the FSM waits before it tries again to write a
// batch the state file refused (a full disk, for one).
const writeRetry = 2 * time.Second

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies the commands of logs and answers one response per log:
// nil, a *kv.ConditionError, or an error wrapping kv.ErrInvalid.
//
// Two failures stop the FSM rather than skip an entry, since skipping would
// leave this replica without a change the others have:
//   - an entry this build cannot decode (a command type or version of a
//     newer minkms): the FSM halts until the node stops, and readiness says
//     why; a restart with a newer build goes on from the same entry;
//   - a state file that refuses the write: the FSM retries until the write
//     succeeds or the node stops. Nothing of the batch is applied meanwhile.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	ops := make([]storage.Op, 0, len(logs))
	at := make([]int, 0, len(logs)) // at[i] is the position in logs of ops[i]
	for i, l := range logs {
		op := storage.Op{Index: l.Index, Term: l.Term}
		switch l.Type {
		case raft.LogCommand:
			cmd, err := DecodeCommand(l.Data)
			if err != nil {
				err = fmt.Errorf("raft log entry %d: %w", l.Index, err)
				f.halt(err, "This node cannot read a committed raft entry and has stopped applying the log; upgrade it to the version of the other nodes")
				return fill(resp, err)
			}
			change := cmd.StateChange()
			op.Change = &change
		case raft.LogConfiguration:
		default:
			continue
		}
		ops = append(ops, op)
		at = append(at, i)
	}
	if len(ops) == 0 {
		return resp
	}
	results, err := f.store.ApplyBatch(ops)
	for err != nil {
		err = fmt.Errorf("raft log entries %d to %d: %w", ops[0].Index, ops[len(ops)-1].Index, err)
		f.setHalted(err)
		f.logger.Error("Failed to write committed raft entries to the state file; retrying (nothing is lost: they stay in the raft log)",
			slog.Any("error", err), slog.String("file", f.store.Path()))
		select {
		case <-f.stop:
			return fill(resp, err)
		case <-time.After(writeRetry):
		}
		results, err = f.store.ApplyBatch(ops)
	}
	f.setHalted(nil)
	var changed []kv.Mutation
	for i, r := range results {
		if r != nil {
			resp[at[i]] = r
		} else if f.onApply != nil && ops[i].Change != nil {
			changed = append(changed, ops[i].Change.Apply...)
		}
	}
	// Before the proposers are answered (when this returns) and before
	// the applied index moves (read-index waiters), so that nothing of
	// this node serves what these changes replaced afterwards.
	if len(changed) > 0 {
		f.onApply(ops[len(ops)-1].Index, changed)
	}
	f.applied.set(ops[len(ops)-1].Index)
	return resp
}

func fill(resp []any, err error) []any {
	for i := range resp {
		resp[i] = err
	}
	return resp
}

// halt records err, logs it and blocks until the node stops.
func (f *fsm) halt(err error, msg string) {
	f.setHalted(err)
	f.logger.Error(msg, slog.Any("error", err))
	<-f.stop
}

func (f *fsm) setHalted(err error) {
	f.mu.Lock()
	f.halted = err
	f.mu.Unlock()
}

// Halted returns why the FSM does not apply the log, nil while it does.
func (f *fsm) Halted() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halted
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.store.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("begin FSM snapshot: %w", err)
	}
	return fsmSnapshot{snap}, nil
}

// Restore replaces the state with a snapshot the leader sent (or, at start,
// one this node took).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("restore FSM snapshot: %w", err)
	}
	index, _ := f.store.Applied()
	if f.onRestore != nil {
		f.onRestore(index)
	}
	f.applied.reset(index)
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

// indexWatch is an index that only grows (but for a snapshot restore) and
// that callers can wait for.
type indexWatch struct {
	mu    sync.Mutex
	index uint64
	ch    chan struct{} // closed and replaced on every change
}

func newIndexWatch(index uint64) *indexWatch {
	return &indexWatch{index: index, ch: make(chan struct{})}
}

func (w *indexWatch) set(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index > w.index {
		w.index = index
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

func (w *indexWatch) reset(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.index = index
	close(w.ch)
	w.ch = make(chan struct{})
}

// get returns the index and a channel closed at its next change.
func (w *indexWatch) get() (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.index, w.ch
}

var errStopped = errors.New("node stopped")
