package storage

import "errors"

// The errors callers branch on. They are returned wrapped, with context; use
// errors.Is. A missing entry, a malformed change and a failed precondition
// are reported in the terms of package kv: kv.ErrNotExist, kv.ErrInvalid,
// *kv.ConditionError.
var (
	// ErrWrongRootKey is returned by Open and Restore when the state was
	// written under another root key.
	ErrWrongRootKey = errors.New("state file was written under another root key")

	// ErrSchema is returned by Open and Restore when the file is not a minkms
	// state file or has a schema version this build does not support.
	ErrSchema = errors.New("unsupported state schema")

	// ErrCorrupt is returned by Get when a stored value does not open under
	// the root key for its entry: the file was damaged or tampered with.
	ErrCorrupt = errors.New("state value is corrupt")

	// ErrClosed is returned by every method of a closed DB.
	ErrClosed = errors.New("state is closed")
)
