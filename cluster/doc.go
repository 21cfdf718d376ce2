// Package cluster runs hashicorp/raft for one minkms node and is the only way
// the replicated state changes.
//
// Every node runs raft, also alone: a single node is a cluster of one member
// that bootstraps itself on first start and elects itself. There is one write
// path whatever the size of the cluster.
//
// # The write path
//
// A write starts as a kv.Change built by the domain: mutations (put,
// delete, delete bucket) guarded by preconditions (must not exist, must exist,
// must be at revision N). Propose takes it through five steps:
//
//  1. Seal. Every Put value is sealed with storage.DB.Seal (AES-256-GCM under
//     a key derived from the cluster root key, bound to its bucket and name),
//     so that nothing secret is in clear from here on: not in the raft log,
//     not in snapshots, not on the wire between nodes.
//  2. Command. The sealed change is encoded as a command: a type byte, a
//     version byte and a compact binary body (command.go). Other command
//     types (node reports, membership) will get their own type bytes.
//  3. Raft. The leader appends the command to its log (raft-boltdb in
//     DataDir/raft/raft.db) and commits it once a quorum holds it. A follower
//     hands the encoded command to the Forward hook, which sends it to the
//     leader; without one it answers ErrNoLeader.
//  4. FSM. On every node, in log order, the FSM decodes the command and calls
//     storage.DB.Apply with the log index. A command that does not decode is
//     logged and answered with an error; it never stops the node.
//  5. bbolt. Apply checks the preconditions and applies the mutations in one
//     bbolt transaction, records the index as the revision of what it wrote
//     and as the applied index, and skips any index it has applied before.
//     That makes replaying the log after a restart harmless.
//
// Propose returns once the change is applied on the leader, with the FSM's
// answer: nil, a *kv.ConditionError naming the first failed
// precondition, or another error. Two concurrent creates of the same entry
// are decided by their preconditions in log order, the same on every node.
//
// # Snapshots
//
// Raft compacts its log with snapshots (DataDir/raft/snapshots, two kept).
// The FSM's snapshot is a consistent bbolt read transaction of the state file
// written out as a whole file; restoring one verifies it opens under the same
// root key and swaps it in atomically.
//
// # Seams
//
// The transport is an option (Config.Transport): nil gives an in-memory
// transport that is enough for one node; a multi-node cluster passes a
// network transport over the mutually authenticated inter-node listener.
// Followers forward writes through Config.Forward, and the leader side of
// that forwarding calls ApplyCommand.
package cluster
