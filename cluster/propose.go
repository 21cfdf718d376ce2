package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/storage/kv"
)

// maxEnqueueWait bounds how long a write waits for room in the leader's
// queue before it is answered ErrOverloaded.
const maxEnqueueWait = 2 * time.Second

// Propose seals the values of c, commits it through raft and returns once it
// is applied on this node, so that a read here sees it (read-your-writes on
// every node). On a follower the command goes to the leader over the
// internal RPC; the client never sees a redirect.
//
// The answer is the FSM's: nil, a *kv.ConditionError (as is, not
// wrapped) if a precondition failed, or an error. A malformed change is
// refused before raft with an error wrapping kv.ErrInvalid. The other
// errors say what is known of the write:
//   - ErrNoLeader: no leader took it within the deadline; not applied;
//   - ErrOverloaded: the leader's queue was full; not applied;
//   - ErrOutcomeUnknown: it was handed to raft but its fate could not be
//     learnt (leadership lost, the leader stopped answering, the deadline
//     passed); it may be applied.
func (n *Node) Propose(ctx context.Context, c kv.Change) error {
	sealed, err := n.seal(c)
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	cmd, err := EncodeCommand(Command{Type: CommandChange, Change: sealed})
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	return n.submit(ctx, cmd)
}

// submit commits an encoded command through the leader, whichever node
// that is, and waits until this node has applied it.
func (n *Node) submit(ctx context.Context, cmd []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	for {
		changed := n.leaderChanged()
		id, addr := n.Leader()
		var err error
		switch {
		case n.IsLeader():
			_, err = n.apply(ctx, cmd)
		case id != "" && id != n.cfg.NodeID && n.cfg.RPC == nil:
			return fmt.Errorf("propose: %w: this node follows %s and cannot forward", ErrNoLeader, id)
		case id != "" && id != n.cfg.NodeID:
			var index uint64
			index, err = n.forward(ctx, addr, cmd)
			if err == nil {
				n.waitAppliedQuietly(ctx, index)
			}
		default:
			err = errNotLeader // no leader known yet
		}
		var ce *kv.ConditionError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ce):
			return ce
		case !errors.Is(err, errNotLeader):
			return fmt.Errorf("propose: %w", err)
		}
		// No leader known, or the one asked is not the leader any more:
		// nothing was appended; wait for the next leader.
		if err := n.waitChange(ctx, changed); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
	}
}

// applyRequest is what a follower forwards.
type applyRequest struct {
	Command []byte `json:"command"`
}

type applyResponse struct {
	Index uint64 `json:"index"`
}

// forward hands cmd to the leader at addr and returns the index at which
// the leader applied it.
func (n *Node) forward(ctx context.Context, addr string, cmd []byte) (uint64, error) {
	var resp applyResponse
	_, err := n.call(ctx, addr, methodApply, applyRequest{Command: cmd}, &resp)
	var re *peernet.RemoteError
	switch {
	case err == nil:
		return resp.Index, nil
	case errors.As(err, &re), errors.Is(err, errNotLeader):
		return 0, err // the leader's own answer, mapped back by call
	case errors.Is(err, peernet.ErrUnreachable):
		// Never delivered: as good as no leader; wait for the next.
		n.logger.Debug("Could not reach the leader to forward a write", slog.String("leader", addr), slog.Any("error", err))
		return 0, fmt.Errorf("%w: %w", errNotLeader, err)
	case errors.Is(err, kv.ErrInvalid), errors.Is(err, ErrNoLeader), errors.Is(err, ErrOverloaded),
		errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrRefused):
		return 0, err
	}
	// Sent, maybe received, no answer: the leader may have applied it.
	return 0, fmt.Errorf("%w: the leader %s did not answer: %w", ErrOutcomeUnknown, addr, err)
}

// waitAppliedQuietly waits until this node has applied index. The write is
// committed whatever happens here; if the wait ends first, a read on this
// node may briefly miss it, which the read path's catch-up covers.
func (n *Node) waitAppliedQuietly(ctx context.Context, index uint64) {
	if err := n.waitApplied(ctx, index); err != nil {
		n.logger.Debug("A forwarded write was committed but not yet applied here", slog.Uint64("index", index), slog.Any("error", err))
	}
}

// waitApplied returns once this node's FSM has applied index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	for {
		cur, changed := n.fsm.applied.get()
		if cur >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, cur, ctx.Err())
		case <-n.done:
			return ErrClosed
		case <-changed:
		}
	}
}

// serveApply is the leader's side of forwarding.
func (n *Node) serveApply(ctx context.Context, from peernet.Peer, body json.RawMessage) (any, error) {
	var req applyRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if !n.isMember(from.NodeID) {
		return nil, fmt.Errorf("%w: node %s is not a member of this cluster and may not write", ErrRefused, from.NodeID)
	}
	if err := mayForward(from.NodeID, req.Command); err != nil {
		return nil, err
	}
	index, err := n.ApplyCommand(ctx, req.Command)
	if err != nil {
		return nil, err
	}
	return applyResponse{Index: index}, nil
}

// mayForward refuses a forwarded command that writes the cluster's record
// of another node than the one that forwards it: a node reports only
// itself. (Older builds wrote their report as a change to cluster/nodes;
// only the leader itself deletes reports.) A command that does not decode
// is left to ApplyCommand.
func mayForward(from string, cmd []byte) error {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return nil
	}
	if c.Type == CommandNodeReport && c.Report.NodeID != from {
		return fmt.Errorf("%w: node %s may not write the report of node %s", ErrRefused, from, c.Report.NodeID)
	}
	for _, m := range c.Change.Apply {
		if m.Bucket == nodesBucket && (m.Kind != kv.Put || m.Name != from) {
			return fmt.Errorf("%w: node %s may not write the report of node %q", ErrRefused, from, m.Name)
		}
	}
	return nil
}

// ApplyCommand commits an encoded command on this node, the leader, and
// returns the index at which it was applied, with the FSM's answer. A
// command that does not decode is refused with an error wrapping
// ErrCommand, a change that is not well formed with one wrapping
// kv.ErrInvalid, both before raft, so that the log only holds what
// Propose itself would have committed. On a node that is not the leader it
// returns an error wrapping errNotLeader: forwarded commands are not
// forwarded again.
func (n *Node) ApplyCommand(ctx context.Context, cmd []byte) (uint64, error) {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return 0, fmt.Errorf("apply command: %w", err)
	}
	if err := c.StateChange().Validate(); err != nil {
		return 0, fmt.Errorf("apply command: %w", err)
	}
	if !n.IsLeader() {
		return 0, fmt.Errorf("apply command: %w", errNotLeader)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	return n.apply(ctx, cmd)
}

// seal returns a copy of c with every Put value sealed for its entry, checked
// to be well formed.
func (n *Node) seal(c kv.Change) (kv.Change, error) {
	out := kv.Change{Require: slices.Clone(c.Require), Apply: slices.Clone(c.Apply)}
	for i, m := range out.Apply {
		if m.Kind != kv.Put {
			continue
		}
		sealed, err := n.cfg.Store.Seal(m.Bucket, m.Name, m.Value)
		if err != nil {
			return kv.Change{}, fmt.Errorf("mutation %d: %w", i, err)
		}
		out.Apply[i].Value = sealed
	}
	if err := out.Validate(); err != nil {
		return kv.Change{}, err
	}
	return out, nil
}

// apply appends cmd to the log on this node, the leader, and waits for the
// FSM's answer and the entry's index.
func (n *Node) apply(ctx context.Context, cmd []byte) (uint64, error) {
	enqueue := maxEnqueueWait
	if deadline, ok := ctx.Deadline(); ok {
		enqueue = min(enqueue, time.Until(deadline))
	}
	future := n.raft.Apply(cmd, enqueue)
	errc := make(chan error, 1)
	go func() { errc <- future.Error() }()
	select {
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: the deadline passed while the write was in flight: %w", ErrOutcomeUnknown, ctx.Err())
	case err := <-errc:
		if err != nil {
			return 0, raftError(err)
		}
	}
	if err, ok := future.Response().(error); ok && err != nil {
		return future.Index(), err
	}
	return future.Index(), nil
}

// raftError says what a failed raft future means for the write.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", errNotLeader, err) // not appended
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrOverloaded, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: the node stopped while the write was in flight (%w)", ErrOutcomeUnknown, ErrClosed)
	}
	return err
}
