package storage

import (
	"errors"
	"fmt"
)

// The errors callers branch on. They are returned wrapped, with context; use
// errors.Is.
var (
	// ErrNotExist is returned by Get when the entry (or its bucket) does not exist.
	ErrNotExist = errors.New("entry does not exist")

	// ErrWrongRootKey is returned by Open and Restore when the state was
	// written under another root key.
	ErrWrongRootKey = errors.New("state file was written under another root key")

	// ErrSchema is returned by Open and Restore when the file is not a minkms
	// state file or has a schema version this build does not support.
	ErrSchema = errors.New("unsupported state schema")

	// ErrCorrupt is returned by Get when a stored value does not open under
	// the root key for its entry: the file was damaged or tampered with.
	ErrCorrupt = errors.New("state value is corrupt")

	// ErrInvalid is returned by Seal, Apply and Change.Validate for a bucket
	// or entry name, condition or mutation that is not well formed.
	ErrInvalid = errors.New("invalid state change")

	// ErrClosed is returned by every method of a closed DB.
	ErrClosed = errors.New("state is closed")
)

// ConditionError is returned by Apply when a precondition failed; Index is the
// position of the first failed one in Change.Require. Nothing of the change
// was written.
type ConditionError struct {
	Index int
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("precondition %d failed", e.Index)
}
