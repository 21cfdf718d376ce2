// Package kms is the key-management domain of minkms: keys and their
// versions, encryption, data keys and MACs, and the identities, policies and
// enclaves that say who may use which key. It is not a server, a store or a
// cluster: it imports no other package of minkms but two leaves of plain
// types and rules (the change vocabulary storage/kv and the identity proof
// idproof), and the server wires in the state it reads and the way it
// proposes changes.
//
// # Enclaves, identities, policies
//
// An enclave is a namespace of keys, identities and policies. The enclave
// "default" always exists (Service.Init creates it). A client is known by
// its Identity, the hash of its certificate's public key, and belongs to at
// most one enclave. The cluster admins, named in the config file, may do
// everything everywhere; an enclave admin everything inside its enclave; a
// user only the key actions its policy allows. An enclave admin binds an
// identity to its enclave only with the consent of the identity's key
// holder, an idproof token (see consent.go). Policy rules map actions to
// name patterns, and deny wins. authz.go holds every rule in one place, and
// every operation is authorised before it reveals whether what it acts on
// exists.
//
// # Keys and versions
//
// A key is a ring of versions, each with 32 bytes of material and an
// algorithm (AES-256-GCM or ChaCha20-Poly1305). The newest version encrypts
// and MACs; every version decrypts, because a ciphertext is an envelope that
// names its version (see envelope.go for the layout). Rotation adds a
// version; deleting a version makes its ciphertexts undecryptable. Version
// numbers are never reused. Every decryption failure is the same error,
// ErrDecrypt, so that a caller learns nothing about why.
//
// Key material is never used directly: every ciphertext has its own AEAD
// key, derived by HKDF-SHA256 from the version's material and a random salt
// that the ciphertext carries, and HMAC uses a subkey of its own. Material,
// salts, nonces and timestamps are made here, before a change is proposed,
// so the replicated state machine stays deterministic. Buffers of key
// material that kms owns are zeroed when it is done with them (for the
// cache: when the entry is dropped, see below).
//
// # The state
//
// kms reads the replicated state through a Reader and changes it only by
// proposing a kv.Change: mutations guarded by preconditions that every node
// checks and applies the same way (see state.go and store.go for the
// layout). The change vocabulary is package storage/kv, a leaf that kms,
// storage and cluster share. Every
// precondition carries a code saying what its failure means ("key-exists");
// store.go maps the code of a failed one to kms's error in one table.
// Conflicts are decided by the preconditions: of two concurrent creates of
// the same key, one wins and the other gets ErrKeyExists; rotations re-read
// and retry when the ring moved under them. Values are plaintext JSON here;
// the proposer seals them before they leave the node.
//
// # The cache, and what kms keeps in memory
//
// kms is no longer stateless: a Service made with Options.CacheMaxEntries
// keeps what it read from the state in memory, decoded, so that the hot
// path does not read, unseal and decode the state and derive subkeys on
// every request (cache.go, ringstate.go). Per (enclave, key) it keeps the
// decoded key ring — the raw 32-byte material of every version — and, made
// on first use, the version's HKDF-Extract output (the PRK from which format
// 2 derives each message's key), the format 1 AEAD and the HMAC subkey;
// per identity the resolved Caller (enclave, admin, policy name); per
// enclave that it exists; per (enclave, policy) the policy. At most
// CacheMaxEntries entries of all kinds together (the server's
// cache.max_keys, default DefaultCacheMaxEntries); when full an arbitrary
// one is evicted. Nothing missing is cached.
//
// Raw material, PRKs and HMAC subkeys are zeroed when their entry is
// evicted or invalidated and the last request using it is done, and at
// Close. What Go's crypto packages derive from them cannot be zeroed: the
// AES key schedules and GCM tables inside cipher.AEAD values, and the
// HMAC-SHA256 inner and outer states (pooled per version) keyed by the PRK.
// They stay in memory until the garbage collector reuses it.
//
// The cache is kept current by whoever applies changes to the state (the
// raft FSM, through the server): it calls Invalidate with each applied
// batch's mutations, and InvalidateAll after a snapshot restore, before the
// change's proposer is answered. So a rotated or deleted key, a replaced or
// deleted policy, a removed identity or a deleted enclave stops being
// served on a node the moment that node applies the change; a request that
// read the state before an invalidation cannot cache what it read after it
// (entries carry the applied index they were read at). A cold entry is
// fetched once for all the requests that want it at the same time.
//
// # Errors
//
// Every error a caller should see is an *Error with a Code and a message
// safe to show. Unexpected failures of the state wrap ErrInternal (shown as
// "internal error") and the cause, for the log; unavailability wraps
// ErrNoLeader. Use ErrorCode and Message to answer a request, errors.Is to
// branch on a sentinel.
package kms
