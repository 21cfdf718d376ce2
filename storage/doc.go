// Package storage is the replicated state of a minkms node on disk: one bbolt
// file of buckets whose values are sealed.
//
// The package is generic. It knows buckets (paths of names joined with "/",
// such as "enclaves/default/keys"), entries (a name within a bucket) and
// revisions (the raft index of the change that wrote an entry last); it knows
// nothing of keys, identities or policies. Changes, preconditions, entries and
// their errors are the types of the leaf package kv, which kms, cluster and
// storage share, so that storage never imports the domain and nobody converts.
//
// Every value is sealed with AES-256-GCM under a key derived by HKDF-SHA256
// from the cluster root key, with the bucket and the name of its entry as
// associated data. A value is sealed before it is proposed (Seal), so the raft
// log, the snapshots and the state file only ever hold sealed bytes, and a
// sealed value copied to another entry does not open there. Names stay in
// clear, so that listing needs no key.
//
// The state changes only through Apply, which the raft FSM calls with the
// index of the log entry: a kv.Change is a batch of mutations guarded by
// preconditions, checked by kv's rules (Condition.Holds) and applied in one
// bbolt transaction together with the applied index. An index at or below the applied index is skipped, so replaying the
// raft log after a restart changes nothing that is already there.
//
// The file also holds a meta bucket with the schema version, a check value of
// the root key (an HMAC of a fixed label under a derived key, never the key)
// and the applied index. Open refuses a file written under another root key
// without changing it.
package storage
