package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minkms/minkms/cluster/peernet"
)

// A read index is the index a node must have applied to see every write
// acknowledged before the read began. The leader gives it: it confirms it
// still leads (VerifyLeader, a round of heartbeats), makes sure an entry of
// its own term has committed and is applied (a barrier, once per term: only
// then has it applied everything its predecessors acknowledged), and
// answers the index its FSM has applied. Every write it acknowledged was
// applied to its FSM before the answer, so the index covers them all.
//
// Indexes here are FSM indexes (commands and configurations), which every
// node's FSM reaches; raft's commit index may point at a no-op or a barrier
// that no FSM ever sees.

// readIndexTimeout bounds one read index round, shared by its waiters.
const readIndexTimeout = 5 * time.Second

// Sync returns once this node has applied every write that was acknowledged
// anywhere in the cluster before Sync was called. It costs one read index
// round, shared with the concurrent callers (see readIndexGroup). With no
// reachable leader it returns an error wrapping ErrNoLeader.
func (n *Node) Sync(ctx context.Context) error {
	index, err := n.readIndex.get(ctx)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := n.waitApplied(ctx, index); err != nil {
		return fmt.Errorf("sync: %w: %w", ErrNoLeader, err)
	}
	return nil
}

// Progress returns how far this node has applied the log, and how far it
// has to go: the newer of the last read index it learnt from the leader
// and raft's commit index (which also counts raft's own no-op entries, so
// it is a bound, for operators to see progress). While applied < target
// the node is catching up (after a restart, or a long partition).
func (n *Node) Progress() (applied, target uint64) {
	applied, _ = n.fsm.applied.get()
	return applied, max(n.readIndex.last.Load(), n.raft.CommitIndex())
}

// readIndexGroup shares read index rounds between concurrent callers. A
// caller may only use a round that started after it arrived (an earlier one
// could miss a write acknowledged just before the caller's read), so a
// caller joins the next round, which starts as soon as the one in flight
// ends: however many callers, at most one round is in flight and one waits.
type readIndexGroup struct {
	node *Node
	last atomic.Uint64 // the newest read index fetched

	mu      sync.Mutex
	running bool
	next    *readIndexRound
}

type readIndexRound struct {
	done  chan struct{}
	index uint64
	err   error
}

func (g *readIndexGroup) get(ctx context.Context) (uint64, error) {
	g.mu.Lock()
	if g.next == nil {
		g.next = &readIndexRound{done: make(chan struct{})}
	}
	r := g.next
	if !g.running {
		g.startLocked()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: no read index yet: %w", ErrNoLeader, ctx.Err())
	}
}

func (g *readIndexGroup) startLocked() {
	r := g.next
	g.next = nil
	g.running = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), readIndexTimeout)
		go func() {
			select {
			case <-g.node.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		r.index, r.err = g.node.fetchReadIndex(ctx)
		cancel()
		if r.err == nil {
			for old := g.last.Load(); r.index > old && !g.last.CompareAndSwap(old, r.index); old = g.last.Load() {
			}
		}
		close(r.done)
		g.mu.Lock()
		g.running = false
		if g.next != nil {
			g.startLocked()
		}
		g.mu.Unlock()
	}()
}

type readIndexResponse struct {
	Index uint64 `json:"index"`
}

// fetchReadIndex asks the leader, whichever node that is, for a read index.
func (n *Node) fetchReadIndex(ctx context.Context) (uint64, error) {
	for {
		changed := n.leaderChanged()
		id, addr := n.Leader()
		var (
			index uint64
			err   error
		)
		switch {
		case n.IsLeader():
			index, err = n.localReadIndex(ctx)
		case id != "" && id != n.cfg.NodeID && n.cfg.RPC != nil:
			var resp readIndexResponse
			_, err = n.call(ctx, addr, methodReadIndex, struct{}{}, &resp)
			index = resp.Index
			if errors.Is(err, peernet.ErrUnreachable) {
				err = fmt.Errorf("%w: %w", errNotLeader, err)
			}
		case id != "" && id != n.cfg.NodeID:
			return 0, fmt.Errorf("%w: this node follows %s and cannot ask it", ErrNoLeader, id)
		default:
			err = errNotLeader
		}
		if err == nil {
			return index, nil
		}
		if !errors.Is(err, errNotLeader) {
			if errors.Is(err, ErrNoLeader) {
				return 0, err
			}
			return 0, fmt.Errorf("%w: read index from %s: %w", ErrNoLeader, addr, err)
		}
		if err := n.waitChange(ctx, changed); err != nil {
			return 0, err
		}
	}
}

// localReadIndex is the leader's read index.
func (n *Node) localReadIndex(ctx context.Context) (uint64, error) {
	if err := await(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("verify leadership: %w", raftError(err))
	}
	term := n.raft.CurrentTerm()
	if n.barrier.Load() != term {
		timeout := readIndexTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		if err := await(ctx, n.raft.Barrier(timeout)); err != nil {
			return 0, fmt.Errorf("barrier: %w", raftError(err))
		}
		n.barrier.Store(term)
	}
	index, _ := n.fsm.applied.get()
	return index, nil
}

func (n *Node) serveReadIndex(ctx context.Context, _ peernet.Peer, _ json.RawMessage) (any, error) {
	if !n.IsLeader() {
		return nil, errNotLeader
	}
	index, err := n.localReadIndex(ctx)
	if err != nil {
		return nil, err
	}
	return readIndexResponse{Index: index}, nil
}

// await waits for a raft future or the end of ctx.
func await(ctx context.Context, f interface{ Error() error }) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-errc:
		return err
	}
}
