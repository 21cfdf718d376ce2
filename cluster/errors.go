package cluster

import "errors"

// The errors callers branch on, returned wrapped: use errors.Is. They keep
// their meaning across the internal RPC, so a follower that forwarded a
// write answers with the same error the leader would have.
var (
	// ErrNoLeader is returned when no leader accepted the write or the read
	// index within the deadline: there is none, or it cannot be reached. The
	// write was not applied; it is safe to retry.
	ErrNoLeader = errors.New("no raft leader")

	// ErrOutcomeUnknown is returned when a write was handed to raft but its
	// outcome could not be learnt: leadership was lost while it was in
	// flight, the leader stopped answering, or the deadline passed. It may
	// or may not be applied; read before retrying.
	ErrOutcomeUnknown = errors.New("the outcome of the write is unknown")

	// ErrOverloaded is returned when the leader's queue of writes is full.
	// Nothing was applied; retry after a short wait.
	ErrOverloaded = errors.New("raft is overloaded")

	// ErrStale is returned by Fresh on a follower that has not heard from a
	// leader for longer than Config.MaxStale.
	ErrStale = errors.New("no contact with the leader")

	// ErrClosed is returned (wrapped, together with ErrNoLeader) once the
	// node is shutting down.
	ErrClosed = errors.New("cluster node is closed")

	// ErrCommand is returned (wrapped) by DecodeCommand for bytes that are not
	// a well-formed command of a known type and version.
	ErrCommand = errors.New("malformed raft command")

	// ErrAlreadyMember is returned by AddNode when the node's id or address
	// belongs to another member already.
	ErrAlreadyMember = errors.New("already a member")

	// ErrNotMember is returned by RemoveNode for an id that is not a member.
	ErrNotMember = errors.New("not a member")

	// ErrRefused is returned when a node may not join: another cluster, a
	// certificate without its advertised host, different admins. The
	// message says which.
	ErrRefused = errors.New("node refused")

	// ErrState is returned by Open when the state file and the raft log
	// disagree in a way that would lose or invent acknowledged writes.
	ErrState = errors.New("state and raft log disagree")

	// ErrNotLeader is returned by Restore on a node that is not the
	// leader: a restore is made by the leader only.
	ErrNotLeader = errors.New("this node is not the raft leader")
)
