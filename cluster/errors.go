package cluster

import "errors"

var (
	// ErrNoLeader is returned (wrapped) by Propose when no leader accepted
	// the change within the propose timeout: there is no leader, this node
	// lost leadership, or it is a follower without a way to forward.
	ErrNoLeader = errors.New("no raft leader")

	// ErrClosed is returned (wrapped, together with ErrNoLeader) by Propose
	// once the node is shutting down.
	ErrClosed = errors.New("cluster node is closed")

	// ErrCommand is returned (wrapped) by DecodeCommand for bytes that are not
	// a well-formed command of a known type and version.
	ErrCommand = errors.New("malformed raft command")
)
