// Package server is one minkms node: its configuration, the client API
// listener with its HTTP handlers and middleware, and the wiring of the
// storage, cluster, kms and tlsmgr packages into something that starts,
// serves and stops. It holds no rules about keys: those live in kms.
//
// # A node
//
// A node is a state file (storage: bbolt, every value sealed under a key
// derived from the cluster root key), a raft member that is the only way
// to change it (cluster; a single node is a one-member cluster), the key
// management service over both (kms), the node's TLS certificates
// (tlsmgr) and the HTTPS listener of the client API. New opens them in
// that order — root key, state, raft (waiting for a leader), kms, TLS,
// listener — so that a node that cannot serve correctly does not start:
// a wrong root key, a missing leader or an invalid certificate are errors
// of New. Run serves until its context is done, reloads the certificates
// on SIGHUP, and shuts down gracefully; Close releases everything.
//
// kms knows neither storage nor raft. adapter.go gives it the two small
// interfaces it declares: a Reader over the local state file and a Proposer
// that sends changes through raft. Both speak the change vocabulary of
// storage/kv, so nothing is converted; the Proposer only gives "no leader"
// its one name for kms, kms.ErrUnavailable.
//
// # A request
//
// An HTTP/2 request is handed to one of a few long-lived worker goroutines
// if one is idle (workers.go): net/http starts a goroutine per HTTP/2
// request, and growing its small stack through the middleware below cost
// more than any of them. An HTTP/1.1 request runs on its connection's
// goroutine, which keeps its stack. The bodies of the key operations (flat
// objects of plain strings, base64 and integers) are decoded by hand
// (decodeFlat); other native bodies that are plain JSON (no escaped keys)
// are checked for strictness in one pass over their bytes and decoded with
// json.Unmarshal (decodeFast); the others take a token walk that names
// what is wrong. The audit trail encodes its lines by hand and writes them
// in batches gathered for up to 10 ms.
//
// A request has one context, made before routing (reqctx.go): it holds the
// request's info (id, caller, route, the status it answered, the audit
// writer) and chi's routing context, so that no middleware copies the
// request to add a value, and the per-route timeout is a deadline whose
// timer starts only if something waits on the context. Every route is
// routed once: the native routes are registered with their whole paths in
// groups, not in sub-routers. The same context links the request into the
// stall guard (stall.go), which cuts off a client that sends its body or
// takes its answer too slowly; net/http's ReadTimeout and WriteTimeout,
// which it replaces, cost two timers per HTTP/2 stream.
//
// A request passes, in order: a request id; the metrics (counted by route
// pattern, never by raw path) and the access log; panic recovery (a panic
// is a 500 "internal error", logged with its stack, counted and
// access-logged as such, never a dead node); a check of the raw path that refuses encoded slashes before routing; the
// 1 MiB body limit (413); the chi router; a per-route timeout; the
// validation of every name in the path (400); authentication (the identity
// is the hash of the client certificate's public key: none is 401, an
// unknown one 403); and the handler, which decodes the body (strictly on
// the native routes, leniently on the KES-compatible ones, whose clients
// may send more), calls one kms method and encodes the answer.
//
// Handlers return errors; one function, writeError, answers them as
// {"message": ...} with the status of the error's kms.Code. On the
// KES-compatible routes status and message are exactly KES's, because KES
// clients compare both; the native routes answer conflicts with 409.
// Internal errors are logged in full and shown as "internal error" only.
package server
