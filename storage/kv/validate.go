package kv

import (
	"fmt"
	"strings"
)

// MaxPathLen is the longest bucket path and the longest entry name, in bytes.
// bbolt refuses longer keys with a write error, which the FSM would have to
// treat as fatal on every node and at every replay; refusing them here makes
// such a change an ordinary invalid one.
const MaxPathLen = 1024

// MaxCodeLen is the longest Condition.Code.
const MaxCodeLen = 64

// Validate reports whether c is well formed: known kinds, valid bucket paths
// and entry names of at most MaxPathLen bytes, valid condition codes, a value
// for every Put. It returns an error wrapping ErrInvalid otherwise. Storage
// does not apply a change that does not validate.
func (c Change) Validate() error {
	for i, r := range c.Require {
		switch r.Kind {
		case MustNotExist, MustExist, AtRevision:
		default:
			return fmt.Errorf("%w: condition %d: unknown kind %d", ErrInvalid, i, r.Kind)
		}
		if err := ValidEntry(r.Bucket, r.Name); err != nil {
			return fmt.Errorf("condition %d: %w", i, err)
		}
		if err := validCode(r.Code); err != nil {
			return fmt.Errorf("condition %d: %w", i, err)
		}
	}
	for i, m := range c.Apply {
		var err error
		switch m.Kind {
		case Put:
			err = ValidEntry(m.Bucket, m.Name)
			if err == nil && len(m.Value) == 0 {
				err = fmt.Errorf("%w: no value", ErrInvalid)
			}
		case Delete:
			err = ValidEntry(m.Bucket, m.Name)
		case DeleteBucket:
			err = validBucket(m.Bucket)
			if err == nil && m.Name != "" {
				err = fmt.Errorf("%w: a bucket deletion names no entry", ErrInvalid)
			}
		default:
			err = fmt.Errorf("%w: unknown kind %d", ErrInvalid, m.Kind)
		}
		if err != nil {
			return fmt.Errorf("mutation %d: %w", i, err)
		}
	}
	return nil
}

// ValidEntry reports whether bucket is a valid bucket path and name a valid
// entry name in it, with an error wrapping ErrInvalid if not. A bucket path
// is made of non-empty names joined with "/"; neither it nor the entry name
// is longer than MaxPathLen or holds a NUL byte (NUL separates bucket and
// name where they are joined, as in the associated data of a sealed value).
func ValidEntry(bucket, name string) error {
	if err := validBucket(bucket); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: empty entry name in bucket %q", ErrInvalid, bucket)
	}
	if len(name) > MaxPathLen {
		return fmt.Errorf("%w: entry name of %d bytes in bucket %q, more than %d", ErrInvalid, len(name), bucket, MaxPathLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%w: entry name %q contains a NUL byte", ErrInvalid, name)
	}
	return nil
}

func validBucket(bucket string) error {
	if bucket == "" {
		return fmt.Errorf("%w: empty bucket path", ErrInvalid)
	}
	if len(bucket) > MaxPathLen {
		return fmt.Errorf("%w: bucket path of %d bytes, more than %d", ErrInvalid, len(bucket), MaxPathLen)
	}
	if strings.IndexByte(bucket, 0) >= 0 {
		return fmt.Errorf("%w: bucket path %q contains a NUL byte", ErrInvalid, bucket)
	}
	for _, part := range strings.Split(bucket, "/") {
		if part == "" {
			return fmt.Errorf("%w: bucket path %q has an empty name", ErrInvalid, bucket)
		}
	}
	return nil
}

// validCode accepts up to MaxCodeLen characters of [a-z0-9-].
func validCode(code string) error {
	if len(code) > MaxCodeLen {
		return fmt.Errorf("%w: condition code of %d bytes, more than %d", ErrInvalid, len(code), MaxCodeLen)
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("%w: condition code %q: only a-z, 0-9 and '-' are allowed", ErrInvalid, code)
		}
	}
	return nil
}
