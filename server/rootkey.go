package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// RootKeySize is the length of a cluster root key in bytes.
const RootKeySize = 32

// rootKeyPrefix marks the text form of a root key and its format version.
const rootKeyPrefix = "r1:"

// ErrInvalidRootKey is returned (wrapped) by ParseRootKey for text that is
// not a root key. Its messages never contain the text itself.
var ErrInvalidRootKey = errors.New("invalid root key")

// GenerateRootKey returns a new random cluster root key in its text form:
// "r1:" followed by the base64url encoding (no padding) of 32 random bytes.
func GenerateRootKey() string {
	var key [RootKeySize]byte
	rand.Read(key[:]) // crypto/rand.Read never fails (Go 1.24+)
	s := rootKeyPrefix + base64.RawURLEncoding.EncodeToString(key[:])
	clear(key[:])
	return s
}

// ParseRootKey parses the text form of a root key, as GenerateRootKey
// returns it, and returns the 32 key bytes. Surrounding white space is
// ignored. The caller owns the returned slice and should clear it when done.
func ParseRootKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidRootKey)
	}
	rest, ok := strings.CutPrefix(s, rootKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrInvalidRootKey, rootKeyPrefix)
	}
	if base64.RawURLEncoding.DecodedLen(len(rest)) != RootKeySize {
		return nil, fmt.Errorf("%w: it must encode %d bytes", ErrInvalidRootKey, RootKeySize)
	}
	key, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		// The decoder's error names the offending position, never the text.
		return nil, fmt.Errorf("%w: not base64url without padding", ErrInvalidRootKey)
	}
	if len(key) != RootKeySize {
		clear(key)
		return nil, fmt.Errorf("%w: it must encode %d bytes", ErrInvalidRootKey, RootKeySize)
	}
	return key, nil
}
