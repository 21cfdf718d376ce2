package kv

import "errors"

// The errors callers branch on. They are returned wrapped, with context; use
// errors.Is.
var (
	// ErrInvalid is returned by Change.Validate and ValidEntry, and by the
	// layers that refuse what does not validate, for a bucket path, entry
	// name, condition or mutation that is not well formed.
	ErrInvalid = errors.New("invalid state change")

	// ErrNotExist is returned by a read of an entry (or a bucket) that does
	// not exist.
	ErrNotExist = errors.New("entry does not exist")
)
