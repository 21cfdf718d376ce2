package kms

import (
	"errors"
	"fmt"
)

// Code is the kind of an application error. Codes are stable: the server maps
// each to an HTTP status in one place, and clients branch on them.
type Code uint8

const (
	Internal        Code = iota // a bug or an unexpected failure; shown to clients as "internal error"
	Invalid                     // bad input: a bad name, a malformed value, an out-of-range length
	NotFound                    // the key, version, identity, policy or enclave does not exist
	Exists                      // it already exists
	Forbidden                   // the caller may not do this (unknown identities included)
	Unavailable                 // the state cannot be changed now (no leader, shutting down)
	Unauthenticated             // no identity at all (no client certificate)
	Conflict                    // other changes kept winning over this one; the cluster is fine, try again
)

// Error is the one application error type. Message is safe to show to the
// caller: it never contains key material or internal detail.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is an *Error with the same code and message.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Message == e.Message
}

// Invalidf returns an Invalid error with a message for the caller.
func Invalidf(format string, args ...any) error {
	return &Error{Code: Invalid, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the Code of err: that of the *Error it wraps, Internal
// for any other non-nil error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// The errors callers branch on. Their messages are KES's, word for word,
// because KES clients compare them.
var (
	ErrKeyNotFound        = &Error{NotFound, "key does not exist"}
	ErrKeyExists          = &Error{Exists, "key already exists"}
	ErrKeyVersionNotFound = &Error{NotFound, "key version does not exist"}
	ErrDecrypt            = &Error{Invalid, "decryption failed: ciphertext is not authentic"}
	ErrNotAllowed         = &Error{Forbidden, "not authorized: insufficient permissions"}
	ErrPolicyExists       = &Error{Exists, "policy already exists"}
	ErrPolicyNotFound     = &Error{NotFound, "policy does not exist"}
	ErrIdentityExists     = &Error{Exists, "identity already exists"}
	ErrIdentityNotFound   = &Error{NotFound, "identity does not exist"}
	ErrEnclaveExists      = &Error{Exists, "enclave already exists"}
	ErrEnclaveNotFound    = &Error{NotFound, "enclave does not exist"}
	ErrNoIdentity         = &Error{Unauthenticated, "no client certificate"}
	ErrNoLeader           = &Error{Unavailable, "no leader: this node cannot reach a raft leader now"}

	// ErrInvalidProof is returned for an identity proof that is malformed,
	// not signed by the identity's key, made for another cluster, enclave
	// or identity, or expired. The error returned wraps it and the reason,
	// for the log; callers see this message only.
	ErrInvalidProof = &Error{Invalid, "invalid identity proof"}

	// ErrKeyChanged is returned by RotateKey and DeleteKeyVersion when
	// other changes of the same key kept winning over the update until
	// its retries (with backoff, within the request's deadline) ran out.
	// Nothing was changed by this request; it may be sent again.
	ErrKeyChanged = &Error{Conflict, "key changed concurrently: try again"}

	// ErrInternal is what callers see of every unexpected failure. The
	// error returned wraps both ErrInternal and the cause, so the cause
	// can be logged while the message shown stays "internal error".
	ErrInternal = &Error{Internal, "internal error"}
)

// Message returns the message of err that is safe to show to a caller: that
// of the *Error it wraps, "internal error" for any other error.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ErrInternal.Message
}
