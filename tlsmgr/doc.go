// Package tlsmgr manages the TLS certificates of one minkms node: it loads
// them, validates every candidate before it is served, reloads them, swaps
// them without dropping a connection, warns before they expire and reports
// their state. It hands out *tls.Config values for the client API listener,
// the inter-node listener and every outgoing dial, and knows nothing of raft
// or HTTP.
//
// # Lifecycle
//
// New loads the configured pairs (certificate and key files; several pairs
// are served by SNI, the first is the default and the one presented on
// dials) and the CA bundle (a file or a directory), and refuses to start
// with anything invalid: the error names the file and a typed Reason.
//
// A candidate is validated step by step before it is served: both files
// readable, strict PEM (a truncated block or trailing bytes are errors,
// never a silently shorter chain or CA pool), an unencrypted private key
// that matches the certificate, a supported algorithm (RSA-2048/3072/4096,
// ECDSA P-256/P-384, Ed25519), valid now (NotBefore may lie up to ClockSkew
// ahead), the node's host in the SANs, usable for both server and client
// authentication, and a chain that verifies against the CA bundle. The
// effective expiry is the earliest NotAfter of the verified chain.
//
// Reloads are triggered by Run (on an interval with jitter, and on changes
// in the directories of the files, debounced) and by explicit Reload calls
// (SIGHUP and POST /v1/tls/reload in the server). Run watches directories,
// not files, which catches rename-on-save and Kubernetes' atomic symlink
// swaps; and it follows each file's symlink chain, watching every directory
// that holds a link on the way, so that a link repointed elsewhere (certbot's
// live/ directory, a repointed "current" directory) is seen at once. The
// chains are resolved again after every reload, and the watches move with
// them. A reload reads each pair as one consistent pair; the SHA-256 of the
// content, never the modification time, decides whether anything changed,
// and unchanged content is a no-op. A new CA bundle is accepted only if
// every served certificate chains to it.
//
// # The swap
//
// Everything served — the certificates, the CA pool and the tls.Configs
// built from them — is one immutable snapshot behind an atomic pointer.
// Listeners read it per handshake (GetConfigForClient), dials per handshake
// (GetClientCertificate, VerifyConnection), so an accepted candidate takes
// effect with the next handshake, no listener restarts and no connection is
// dropped. A refused candidate changes nothing: the last good snapshot
// keeps serving, the reason is logged and counted. Subscribers (the raft
// transport) are told of each rotation to recycle long-lived connections.
//
// # Warnings and status
//
// At start and after every check each served pair whose effective expiry
// is within Config.WarnBefore is logged at WARN in words operators search
// for:
//
//	Certificate /etc/minkms/public.crt expires in 36h
//	Certificate /etc/minkms/public.crt expired on 2025-01-15 14:30:00
//	Failed to read server certificate: open /etc/minkms/public.crt: no such file or directory
//
// with the path, the expiry and the reason as fields. Status reports, per
// pair, what is served and how its checks went (for GET /v1/tls/status);
// Metrics the figures that package tlsmetrics exports to Prometheus. Check
// runs the same validation offline for `minkms cert check`.
package tlsmgr
