package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// CanonicalIdentity returns id in the "h1:" form a server stores and shows.
// KES's form of an identity, the same SHA-256 of the public key as 64
// hexadecimal digits (what `kes identity of` prints), becomes its "h1:"
// form; anything else is returned unchanged, for the server to judge.
func CanonicalIdentity(id string) string {
	if len(id) != 2*sha256.Size || strings.HasPrefix(id, identityPrefix) {
		return id
	}
	sum, err := hex.DecodeString(id)
	if err != nil {
		return id
	}
	return identityPrefix + base64.RawURLEncoding.EncodeToString(sum)
}

// HexIdentity returns KES's form of an "h1:" identity (64 lower-case hex
// digits), "" if id is not one.
func HexIdentity(id string) string {
	rest, ok := strings.CutPrefix(CanonicalIdentity(id), identityPrefix)
	if !ok {
		return ""
	}
	sum, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(sum) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(sum)
}
