// Package cluster runs hashicorp/raft for one minkms node and is the only way
// the replicated state changes. It knows nothing of keys: it replicates
// batches of mutations (package storage/kv) into the sealed state file
// (package storage), and keeps a small area of its own ("cluster/…": the
// cluster id and each node's report).
//
// Every node runs raft, also alone: a single node is a cluster of one
// member. There is one write path whatever the size of the cluster.
//
// # Forming a cluster
//
// A node forms or joins a cluster only when its config says so, and only
// while its data directory holds no state (no raft log, no snapshot, no
// applied state); a node with state resumes it and never forms again, so a
// wiped or restarted node cannot split off a cluster of its own:
//
//   - bootstrap: a cluster of this node alone (asking the join peers first,
//     and joining instead if one of them is in a cluster);
//   - bootstrap_expect N with join: the nodes ask each other who they are
//     until N are known, then each bootstraps the identical configuration of
//     those N, raft's documented way; automation may start them all at once;
//   - neither: join through the join peers, retried with backoff, or wait for
//     an operator's add-node.
//
// The first leader records a random cluster id in the state; peers of
// another cluster id are refused on every connection (cluster/peernet).
// Nodes are added as non-voters and promoted to voters by the leader once
// they have applied what the leader had applied when it asked, so a new node
// counts for the quorum only once it holds the data. The leader dials a node
// before adding it: its certificate must name the host it advertises, it
// must prove the root key, and its cluster admins must be the cluster's.
//
// # Writes
//
// A write is a kv.Change built by the domain. Propose seals every Put value
// (storage.DB.Seal) so that nothing secret is in clear from then on, encodes
// the change as a command (command.go), and hands it to the leader: directly
// on the leader, over the internal RPC from a follower (the client never sees
// a redirect; the leader re-checks that the forwarding peer is a member). The
// leader answers with the entry's index and the follower returns only once it
// has applied that index itself: a read on the node that answered a write
// sees it. Raft's failures keep their meaning:
//
//   - ErrNoLeader: nothing was appended (no leader, or it changed before the
//     entry was taken); the write is retried on the new leader within the
//     deadline and reported only if none took it;
//   - ErrOverloaded: the leader's queue was full; nothing was appended;
//   - ErrOutcomeUnknown: the entry was handed to raft and its fate could not
//     be learnt (leadership lost, the leader stopped answering, the deadline
//     passed); it may be applied. Callers must read before retrying.
//
// The FSM applies committed entries in batches, each in one bbolt
// transaction, and skips entries it applied before without writing (a
// replay after a restart costs reads only). It records the index and term it
// applied. An entry it cannot read (a command type or version of a newer
// build) halts the FSM with a clear error rather than skipping it, which
// would make the replicas diverge; a state file that refuses a write is
// retried until it takes it.
//
// # Reads
//
// Reads are served from the local replica. A read index gives the index a
// node must have applied to see every write acknowledged anywhere before the
// read began: the leader confirms it still leads (VerifyLeader), makes sure
// an entry of its own term is applied (a barrier, once per term), and answers
// its FSM's applied index. Sync asks for one and waits until the local FSM
// has applied it; concurrent callers share rounds, so a flood of misses costs
// one round trip at a time. The server uses Sync for readiness, for a lookup
// that missed locally (a key created through another node a moment ago), and
// for reads with ?consistent=true. A follower that has not heard from a
// leader for Config.MaxStale reports itself stale (Fresh) and serves nothing.
//
// # Start-up checks
//
// Before raft starts, Open checks that the data directory belongs to this
// node id, and that the state file and the raft log agree: a state ahead of
// the log (a lost raft log), or one whose last entry has another term than
// the log's, is refused with ErrState, since going on would drop or invent
// acknowledged writes; a state behind the newest snapshot is rebuilt from it,
// and a snapshot never replaces a newer state. A data directory of the
// single-node layout is migrated once to the configured id and peer address.
//
// # Asking other nodes
//
// Handle, Ask and AskAll give every node one way to ask another node (or all
// of them at once, each with its own deadline) over the internal RPC: cluster
// status, logs and per-node certificate status are built on it.
//
// # Node reports and health
//
// Every node records a report of itself in cluster/nodes/<id>: its
// addresses, version, reload interval and certificates (summaries, the
// served chains and the CA bundle in DER), from Config.Report. It writes it
// through raft as a command of its own type, CommandNodeReport, on start,
// whenever it differs from what is recorded (after a certificate reload:
// Config.ReportTrigger), and at least once per reload interval, so that its
// age says whether the node still reports; never every second for nothing.
// Only the node itself writes its report: the leader refuses one forwarded by
// another node. The leader deletes the report of a node it removes. Members
// lists the API addresses from the reports, and Reported (readiness) waits
// for this node's.
//
// HealthInput gathers what package cluster/health judges: the raft
// configuration, the reports, a live probe of every member (MethodProbe: its
// role, leader, applied index, last contact and clock, with the round trip)
// and every member's handshake observations (MethodObservations, from
// Config.Observations), so that any node sees what every node sees.
//
// # Seams
//
// The transport and the RPC are given in Config: raft's NetworkTransport over
// the stream layer of cluster/peernet and the peernet.Network itself in
// production, raft's in-memory transport and an in-memory RPC in tests.
package cluster
