// Package api is the public contract of minkms and its Go client SDK: the
// wire types, the errors a server answers, API keys, and Client.
//
// It imports nothing of the server side, so an application that uses the
// SDK pulls in no raft, bbolt or HTTP router.
//
// # Routes
//
// Every route but /version and /v1/health/* needs a client certificate.
// Byte fields are standard base64 in JSON. POST is accepted wherever PUT is.
//
// KES-compatible routes act in the caller's own enclave (a cluster admin's
// is "default") and answer errors exactly as KES does:
//
//	PUT    /v1/key/create/{name}
//	PUT    /v1/key/import/{name}        ImportKeyRequest
//	GET    /v1/key/describe/{name}      → KeyInfo
//	GET    /v1/key/list/{prefix}        ?continue=NAME&limit=N → ListResponse ("*" or empty: all)
//	DELETE /v1/key/delete/{name}
//	PUT    /v1/key/generate/{name}      GenerateKeyRequest → GenerateKeyResponse
//	PUT    /v1/key/encrypt/{name}       EncryptKeyRequest → EncryptKeyResponse
//	PUT    /v1/key/decrypt/{name}       DecryptKeyRequest → DecryptKeyResponse
//	PUT    /v1/key/hmac/{name}          HMACRequest → HMACResponse
//	GET    /version                     → VersionResponse (no certificate needed)
//	GET    /v1/status                   → StatusResponse
//	GET    /v1/ready                    → HealthResponse
//	GET    /v1/identity/self/describe   → SelfResponse
//
// Native routes name the enclave explicitly and answer conflicts with 409:
//
//	GET    /v1/health/live, /v1/health/ready      → HealthResponse (no certificate needed)
//	GET    /v1/metrics                             Prometheus text, KES's kes_* families only
//	GET    /metrics                                Prometheus text (cluster admin, or a policy allowing "metrics:read")
//	GET    /v1/tls/status                          ?node=ID → TLSStatus of the node that answers, or of member ID (cluster admin)
//	POST   /v1/tls/reload                          → TLSReloadResult (cluster admin)
//	GET    /v1/cluster/members                     → ClusterMembers (cluster admin)
//	POST   /v1/cluster/members                     AddNodeRequest → ClusterMember (cluster admin)
//	DELETE /v1/cluster/members/{id}                (cluster admin)
//	GET    /v1/cluster/status                      → ClusterStatus, from any member (cluster admin)
//	GET    /v1/backup                              ?consistent= → a backup (cluster admin; see Client.Backup)
//	POST   /v1/restore                             a backup, ?force= → RestoreResponse (cluster admin, leader only)
//	GET    /v1/enclaves                            ?prefix=&continue=&limit= → ListResponse
//	PUT    /v1/enclaves/{enclave}                  → EnclaveInfo (cluster admin)
//	GET    /v1/enclaves/{enclave}                  → EnclaveInfo
//	DELETE /v1/enclaves/{enclave}
//	GET    /v1/enclaves/{enclave}/keys             ?prefix=&continue=&limit= → ListResponse
//	PUT    /v1/enclaves/{enclave}/keys/{name}      CreateKeyRequest (optional) → KeyInfo
//	PUT    /v1/enclaves/{enclave}/keys/{name}/import   ImportKeyRequest → KeyInfo
//	GET    /v1/enclaves/{enclave}/keys/{name}      → KeyInfo with versions
//	DELETE /v1/enclaves/{enclave}/keys/{name}
//	POST   /v1/enclaves/{enclave}/keys/{name}/rotate   → RotateKeyResponse
//	DELETE /v1/enclaves/{enclave}/keys/{name}/versions/{version}
//	PUT    /v1/enclaves/{enclave}/keys/{name}/generate GenerateKeyRequest → GenerateKeyResponse
//	PUT    /v1/enclaves/{enclave}/keys/{name}/encrypt  EncryptKeyRequest → EncryptKeyResponse
//	PUT    /v1/enclaves/{enclave}/keys/{name}/decrypt  DecryptKeyRequest → DecryptKeyResponse
//	PUT    /v1/enclaves/{enclave}/keys/{name}/hmac     HMACRequest → HMACResponse
//	GET    /v1/enclaves/{enclave}/identities       ?prefix=&continue=&limit= → ListResponse
//	PUT    /v1/enclaves/{enclave}/identities/{identity}  CreateIdentityRequest → IdentityInfo
//	GET    /v1/enclaves/{enclave}/identities/{identity}  → IdentityInfo
//	DELETE /v1/enclaves/{enclave}/identities/{identity}
//	GET    /v1/enclaves/{enclave}/policies         ?prefix=&continue=&limit= → ListResponse
//	PUT    /v1/enclaves/{enclave}/policies/{name}  Policy → PolicyInfo
//	GET    /v1/enclaves/{enclave}/policies/{name}  → PolicyInfo
//	DELETE /v1/enclaves/{enclave}/policies/{name}
//
// The describe and list routes (and /v1/identity/self/describe and GET
// /v1/cluster/members) accept ?consistent=true: the node answers only
// once it has caught up with the leader, or 503 "no leader: …" if it
// cannot reach one.
//
// Names match [A-Za-z0-9_.-]{1,80} and are not "." or "..". Identities are
// "h1:" + base64url (no padding) of the SHA-256 of the certificate's
// SubjectPublicKeyInfo. Request bodies are limited to 1 MiB.
//
// # Client
//
// A Client talks to the nodes of one cluster. It authenticates with an
// APIKey, from which it derives a self-signed client certificate (renewed
// before it expires), or with a certificate of its own in Config.TLS.
// Methods of Client use the KES-compatible routes in the caller's own
// enclave; Client.Enclave returns an Enclave whose methods use the native
// routes of a named enclave.
//
// A request goes to the endpoint that answered last. A read (describe,
// list, encrypt, decrypt, generate, HMAC, status) that cannot be delivered
// (refused connection, failed TLS handshake, reset, no answer within
// Config.Timeout) or is answered 503 is sent again to the next endpoint; any
// other answer, 4xx or 5xx, is final. A write (create, import, rotate,
// delete; enclaves, identities, policies, members) is sent again only when
// it certainly was not applied: it never reached the endpoint, or the
// answer was 503 "no leader" or a 503 with Retry-After. A write that was
// sent but not answered returns an error wrapping ErrOutcomeUnknown, as a
// server does when leadership changed under it: sending it again blindly
// would turn a create that succeeded into "key already exists", or rotate
// a key twice. An error answer is returned as an *Error, which errors.Is
// compares with the sentinel errors of this package.
//
// A cluster that cannot take a request now answers one of three errors,
// and the Client treats each differently:
//
//   - ErrNoLeader (503 "no leader: …"): there is no leader, during an
//     election or without a quorum, and nothing was applied. The Client
//     moves on to the next endpoint, as for any 503; once every endpoint
//     answered so, it returns the last answer, and the caller may try again
//     a little later (an election takes a few seconds).
//   - ErrOverloaded (503 "server overloaded, retry later", with a
//     Retry-After header): the cluster could not queue the request, and
//     nothing was applied. The Client waits as long as Retry-After says,
//     but no longer than Config.Timeout, and sends the request again to the
//     same endpoint, up to three times; after that a further 503 moves on
//     to the next endpoint. If the context's deadline would pass during the
//     wait, it does not wait but returns ErrOverloaded at once. Since the
//     server did not act, Enclave.RotateKey is sent again too.
//   - ErrOutcomeUnknown (500 "the outcome of the write is unknown"): the
//     node lost its leadership, or its leader, while the write was in
//     flight, so it may or may not have been applied. The Client never
//     sends it again, to this or another endpoint: a blind retry of a create
//     that was applied would answer "already exists", of a rotation add a
//     second version. It returns the error as is, so
//     errors.Is(err, ErrOutcomeUnknown) holds; the caller should read the
//     state (describe the key) before deciding whether to repeat the write.
//
// # Consistent reads
//
// Writes go through the leader, but any node answers a describe or a list
// from its replica of the state, and a follower's replica may lag the
// leader by a heartbeat: right after a key was deleted or rotated through
// one node, a describe through another may still show the old key, and a
// list may miss a key just created. Most applications need nothing more:
// a describe (or an encryption) that does not find a name is looked up
// again by the server after catching up with the leader, so a key is
// found as soon as its create returned, whichever node is asked.
//
// An application that must see every acknowledged write (a test that
// checks the history, an operator comparing nodes, a list right after a
// create) asks for consistent reads: Config.ConsistentReads for every
// describe and list of a Client, or WithConsistentReads for the requests
// of one context, which overrides the Config either way:
//
//	keys, err := client.ListKeys(api.WithConsistentReads(ctx, true), "app-", "", 0)
//
// The node then answers only once it has applied every write acknowledged
// before the request, which costs a round trip to the leader; without a
// leader the answer is ErrNoLeader and the Client moves on to the next
// endpoint, as for any read. The cryptographic operations, Status, Ready
// and the TLS methods are not affected.
//
// The membership methods (ClusterMembers, AddNode, RemoveNode) may be sent
// to any member: a change is made by the leader whichever member is asked.

// Backup streams a backup of the whole state from the first node that
// answers; Restore sends one to the leader, which it finds itself. Neither
// is bounded by Config.Timeout, nor by the 1 MiB body limit: bound them
// with the context.
//
// Plaintexts and data keys pass through the client's buffers; it clears
// those it owns once the answer is decoded. The byte slices it returns
// belong to the caller, who should clear them when done.
package api
