package cluster

import (
	"time"
)

// Status is this node's view of raft, for metrics and tests. The server
// converts it into the wire types of package api.
type Status struct {
	ID            string
	Address       string
	State         string // Leader, Follower, Candidate or Shutdown
	LeaderID      string
	LeaderAddress string
	Term          uint64
	AppliedIndex  uint64 // raft's; the state file's may lag it by non-change entries
	CommitIndex   uint64
	LastIndex     uint64
	LastContact   time.Time // with the leader; zero on the leader itself
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
