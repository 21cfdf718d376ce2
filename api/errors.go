package api

import (
	"errors"
	"fmt"
	"net/http"
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
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return e.Message == t.Message
}

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
	// ErrNoCertificate is returned when a request that needs a client
	// certificate was sent without one.
	ErrNoCertificate = &Error{http.StatusUnauthorized, "no client certificate"}
)
