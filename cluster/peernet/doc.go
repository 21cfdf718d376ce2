// Package peernet is the network between the nodes of a minkms cluster: one
// listener (cluster.address) that carries the raft transport and the
// internal RPC, and the dialer that reaches the other nodes' listeners. It
// knows nothing of the state machine, of keys or of membership; the cluster
// package tells it who is admitted (Config.Admit) and what each RPC method
// does (Handle).
//
// # Two protocols, one port
//
// Every connection is TLS 1.3 with certificates on both sides, from the
// node's TLS manager, and names its protocol by ALPN: minkms-raft/1 for
// hashicorp/raft's NetworkTransport streams, minkms-rpc/1 for the internal
// RPC (HTTP/1.1 with JSON bodies, POST /rpc/{method}). ALPN is agreed inside
// the handshake, before a byte of either protocol flows, so there is no
// sniffing of the first bytes, no second port to secure, and a connection
// that names neither protocol is closed before it reaches raft or HTTP.
//
// # The proof
//
// A certificate that chains to the CA bundle is not enough to be a peer: the
// same CA may well sign API client certificates, even for a node's host name.
// So, after the handshake, both ends prove that they hold the cluster's root
// key, in three frames:
//
//	dialer   → acceptor  Hello_d, HMAC(K, label‖"dialer"‖ekm‖Hello_d)
//	acceptor → dialer    Hello_a, HMAC(K, label‖"acceptor"‖ekm‖Hello_d‖Hello_a)
//	dialer   → acceptor  ok (or why not)
//
// K is ProofKey(root key), derived by HKDF, so the root key itself serves no
// other purpose. ekm is keying material exported from this very TLS session
// (RFC 8446 exporter), and the Hellos hold both node ids, both peer addresses
// and the cluster id. A proof is therefore valid on one connection only: it
// cannot be replayed on another session, relayed by a machine in the middle
// (that machine would have a different session on each side), or reflected
// back in the other direction. The acceptor answers only after the dialer's
// proof verified, so a node without the key learns nothing but "refused";
// and since only MACs over fresh session secrets cross the wire, a node with
// a wrong key learns nothing about the right one.
//
// After the proof each side checks the other: the cluster ids must agree
// when both nodes are in a cluster ("belongs to cluster X, not Y"), the
// certificate must name the host of the peer address the node announces, and
// Admit (membership) must agree. Whatever fails is logged on the side that
// found it and sent to the other side, which returns it wrapped in
// ErrRefused; both sides say which check failed.
//
// So an API client certificate from the same CA, even one naming a node's
// host and allowing client authentication, gets a TLS session and no more:
// without the root key it cannot open a raft stream nor call the RPC.
//
// # Not in raft's way
//
// Raft's transport backs off after every error its listener returns, for up
// to a second. So handshakes never run in raft's Accept: the listener's
// accept loop only accepts, each connection is handshaken in a goroutine of
// its own under HandshakeTimeout and a bound on handshakes in flight (one
// remote host may hold a quarter of them, so a flood from one host does not
// lock out the others), and the stream layer's Accept returns only proven
// raft connections, and an error only once it is closed.
//
// # Certificate rotation
//
// Every connection is tracked. When the TLS manager serves a new
// certificate, raft's connections are closed one peer at a time, a pause
// between peers, so raft redials with the new certificate and no follower
// misses heartbeats long enough to start an election. The RPC client starts
// a new connection pool (the old one closes as its calls end), and the RPC
// server asks the caller to close each older connection after its next
// answer (closing idle connections from the server side would race with a
// request already on its way).
//
// # What peers present
//
// Observations says, per peer, which certificate it presented in the last
// proven handshake (SHA-256 fingerprint, NotAfter, when, the host it was
// dialed at) and how the last handshake that failed because of it failed:
// "expired", "unknown-ca", "name-mismatch" or the error's words. A peer is
// known by its node id once proven, else by the address it was dialed at or
// the host it connected from. The cluster's health findings compare these
// with what each node reports of itself.
package peernet
