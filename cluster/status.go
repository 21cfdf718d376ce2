package cluster

import (
	"time"
)

// Status is this node's view of raft, for the status API and metrics.
type Status struct {
	ID            string    `json:"id"`
	Address       string    `json:"address"`
	State         string    `json:"state"` // Leader, Follower, Candidate or Shutdown
	LeaderID      string    `json:"leader_id,omitempty"`
	LeaderAddress string    `json:"leader_address,omitempty"`
	Term          uint64    `json:"term"`
	AppliedIndex  uint64    `json:"applied_index"` // raft's; the state file's may lag it by non-change entries
	CommitIndex   uint64    `json:"commit_index"`
	LastIndex     uint64    `json:"last_index"`
	LastContact   time.Time `json:"last_contact,omitzero"` // with the leader; zero on the leader itself
}

// Stats returns this node's view of raft now.
func (n *Node) Stats() Status {
	leaderID, leaderAddr := n.Leader()
	s := Status{
		ID:            n.cfg.NodeID,
		Address:       string(n.transport.LocalAddr()),
		State:         n.raft.State().String(),
		LeaderID:      leaderID,
		LeaderAddress: leaderAddr,
		Term:          n.raft.CurrentTerm(),
		AppliedIndex:  n.raft.AppliedIndex(),
		CommitIndex:   n.raft.CommitIndex(),
		LastIndex:     n.raft.LastIndex(),
	}
	if s.State != "Leader" {
		s.LastContact = n.raft.LastContact()
	}
	return s
}
