package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage/kv"
)

// Propose seals the values of c, commits it through raft and returns once it
// is applied on the leader. The answer is the FSM's: nil, a
// *kv.ConditionError (as is, not wrapped) if a precondition failed, or
// another error. A malformed change is refused before raft with an error
// wrapping kv.ErrInvalid. If no leader accepts the change within the
// propose timeout, the error wraps ErrNoLeader.
//
// If ctx ends while the change is in flight, Propose returns ctx's error; the
// change may still be applied.
func (n *Node) Propose(ctx context.Context, c kv.Change) error {
	sealed, err := n.seal(c)
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	cmd, err := EncodeCommand(Command{Type: CommandChange, Change: sealed})
	if err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()

	for {
		changed := n.leaderChanged()
		if n.IsLeader() {
			return n.apply(ctx, cmd)
		}
		id, addr := n.Leader()
		switch {
		case id != "" && id != n.cfg.NodeID && n.cfg.Forward != nil:
			return n.cfg.Forward(ctx, id, addr, cmd)
		case id != "" && id != n.cfg.NodeID:
			return fmt.Errorf("propose: %w: this node follows %s and cannot forward", ErrNoLeader, id)
		}
		// No leader yet, or this node is in the middle of stepping up or
		// down: wait for the next change of leader.
		if err := n.waitChange(ctx, changed); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
	}
}

// ApplyCommand commits an encoded command, such as one a follower forwarded,
// and returns the FSM's answer like Propose. A command that does not decode
// is refused with an error wrapping ErrCommand, a change that is not well
// formed with one wrapping kv.ErrInvalid, both before raft, so that the
// log only holds what Propose itself would have committed. It is refused
// with ErrNoLeader if this node is not the leader: forwarded commands are
// not forwarded again.
func (n *Node) ApplyCommand(ctx context.Context, cmd []byte) error {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return fmt.Errorf("apply command: %w", err)
	}
	if err := c.Change.Validate(); err != nil {
		return fmt.Errorf("apply command: %w", err)
	}
	if !n.IsLeader() {
		return fmt.Errorf("apply command: %w: this node is not the leader", ErrNoLeader)
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
// FSM's answer.
func (n *Node) apply(ctx context.Context, cmd []byte) error {
	timeout := n.cfg.ProposeTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	future := n.raft.Apply(cmd, timeout)
	errc := make(chan error, 1)
	go func() { errc <- future.Error() }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("propose: %w", ctx.Err())
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("propose: %w", raftError(err))
		}
	}
	if err, ok := future.Response().(error); ok && err != nil {
		return err
	}
	return nil
}

// raftError says which raft failures mean "no leader now, try again".
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w (%w)", ErrNoLeader, ErrClosed)
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	return err
}

// waitChange waits until changed is closed, with a slow tick in case an
// observation was dropped.
func (n *Node) waitChange(ctx context.Context, changed <-chan struct{}) error {
	tick := time.NewTimer(50 * time.Millisecond)
	defer tick.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	case <-n.done:
		return fmt.Errorf("%w (%w)", ErrNoLeader, ErrClosed)
	case <-changed:
	case <-tick.C:
	}
	return nil
}
