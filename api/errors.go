package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is an error answered by a minkms server. Every API error is sent as
// JSON {"message": "..."} with an HTTP status; Status and Message carry both.
//
// Errors are compared by their message: errors.Is(err, ErrKeyNotFound) holds
// for an error decoded from any route, KES-compatible or native, because both
// use the same messages (the native routes answer "exists" errors with 409
// where the KES routes answer 400, as KES does).
type Error struct {
	Status  int    // HTTP status code
	Message string // the server's message, shown to users as is
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Is reports whether target is an *Error with the same message.
// ErrNoLeader is the one exception: it matches every message that starts
// with "no leader:", as what follows the colon says why and may vary.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	if t == ErrNoLeader {
		return e.Message == t.Message || strings.HasPrefix(e.Message, noLeaderPrefix)
	}
	return e.Message == t.Message
}

// noLeaderPrefix starts the message of every "no leader" answer.
const noLeaderPrefix = "no leader:"

// The errors a server answers on the KES-compatible routes, with KES's
// status codes and exact messages: KES clients (MinIO among them) compare
// both to decide what happened.
var (
	// ErrKeyNotFound is returned when the named key does not exist.
	ErrKeyNotFound = &Error{http.StatusNotFound, "key does not exist"}
	// ErrKeyExists is returned when a key of that name already exists.
	ErrKeyExists = &Error{http.StatusBadRequest, "key already exists"}
	// ErrDecrypt is returned for every failure to decrypt a ciphertext:
	// wrong key, wrong context, tampered or malformed ciphertext.
	ErrDecrypt = &Error{http.StatusBadRequest, "decryption failed: ciphertext is not authentic"}
	// ErrNotAllowed is returned when the caller's identity is unknown or
	// its policy does not allow the operation.
	ErrNotAllowed = &Error{http.StatusForbidden, "not authorized: insufficient permissions"}
	// ErrPolicyExists is returned when a policy of that name already exists.
	ErrPolicyExists = &Error{http.StatusBadRequest, "policy already exists"}
	// ErrPolicyNotFound is returned when the named policy does not exist.
	ErrPolicyNotFound = &Error{http.StatusNotFound, "policy does not exist"}
	// ErrIdentityExists is returned when the identity is already assigned.
	ErrIdentityExists = &Error{http.StatusBadRequest, "identity already exists"}
	// ErrIdentityNotFound is returned when the identity is not known.
	ErrIdentityNotFound = &Error{http.StatusNotFound, "identity does not exist"}
	// ErrEnclaveExists is returned when an enclave of that name already exists.
	ErrEnclaveExists = &Error{http.StatusBadRequest, "enclave already exists"}
	// ErrEnclaveNotFound is returned when the named enclave does not exist.
	ErrEnclaveNotFound = &Error{http.StatusNotFound, "enclave does not exist"}
	// ErrKeyVersionNotFound is returned when a key exists but not the
	// requested version (native routes only).
	ErrKeyVersionNotFound = &Error{http.StatusNotFound, "key version does not exist"}
	// ErrKeyChanged is returned (409, on every route) when other changes
	// of the same key kept winning over a rotation or a version deletion
	// until the server's retries ran out. Nothing was changed; the request
	// may be sent again. The Client does not fail over on it: the cluster
	// is fine.
	ErrKeyChanged = &Error{http.StatusConflict, "key changed concurrently: try again"}
	// ErrNoCertificate is returned when a request that needs a client
	// certificate was sent without one.
	ErrNoCertificate = &Error{http.StatusUnauthorized, "no client certificate"}
	// ErrInvalidProof is returned when the identity proof of a create
	// identity request is malformed, not signed by the identity's key,
	// made for another cluster, enclave or identity, or expired (native
	// routes only). The server does not say which: ParseIdentityProof
	// shows what a token claims.
	ErrInvalidProof = &Error{http.StatusBadRequest, "invalid identity proof"}
)

// The errors of a cluster that cannot take a request now, on every route.
// The Client handles each as documented in the package overview; they
// reach the caller only when the Client gave up.
var (
	// ErrNoLeader is answered (503) when the cluster has no leader that
	// can take the request, during an election or without a quorum. The
	// request was not applied; it is safe to try again, and the Client
	// tries the next endpoint.
	ErrNoLeader = &Error{http.StatusServiceUnavailable, "no leader: this node cannot reach a raft leader now"}
	// ErrOverloaded is answered (503, with a Retry-After header) when the
	// cluster cannot queue the request now. The request was not applied;
	// the Client waits as long as Retry-After says and tries again.
	ErrOverloaded = &Error{http.StatusServiceUnavailable, "server overloaded, retry later"}
	// ErrOutcomeUnknown is answered (500) when the node lost its
	// leadership, or its contact with the leader, while a write was in
	// flight: the write may or may not have been applied. The Client
	// never sends it again. Read the state before deciding to retry: a
	// blind retry of a create that was applied answers "already exists".
	ErrOutcomeUnknown = &Error{http.StatusInternalServerError, "the outcome of the write is unknown"}
)
