package kms

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Identity names a client: "h1:" followed by the base64url encoding, without
// padding, of the SHA-256 of its certificate's SubjectPublicKeyInfo. It
// depends on the public key only, so a renewed certificate for the same key
// keeps its identity.
type Identity string

const identityPrefix = "h1:"

// identityLen is the length of every valid Identity.
var identityLen = len(identityPrefix) + base64.RawURLEncoding.EncodedLen(sha256.Size)

// IdentityOf returns the identity of the client that presents cert.
func IdentityOf(cert *x509.Certificate) Identity {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return Identity(identityPrefix + base64.RawURLEncoding.EncodeToString(sum[:]))
}

// hexIdentityLen is the length of a KES identity: the same SHA-256 in hex.
const hexIdentityLen = 2 * sha256.Size

// ParseIdentity returns s as an Identity. s is either in the canonical form
// IdentityOf produces or in KES's form, the same SHA-256 as 64 hexadecimal
// digits (what `kes identity of` prints and KES configs and policies hold),
// which ParseIdentity returns in the canonical "h1:" form. Anything else is
// an Invalid error.
func ParseIdentity(s string) (Identity, error) {
	if len(s) == hexIdentityLen && !strings.HasPrefix(s, identityPrefix) {
		sum, err := hex.DecodeString(s)
		if err != nil {
			return "", Invalidf("invalid identity: 64 characters but not a hex SHA-256 hash (want h1:... or 64 hex digits)")
		}
		return Identity(identityPrefix + base64.RawURLEncoding.EncodeToString(sum)), nil
	}
	rest, ok := strings.CutPrefix(s, identityPrefix)
	if !ok {
		return "", Invalidf("invalid identity: must start with %q or be 64 hex digits", identityPrefix)
	}
	if len(s) != identityLen {
		return "", Invalidf("invalid identity: must be %d characters long", identityLen)
	}
	sum, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(sum) != sha256.Size {
		return "", Invalidf("invalid identity: not a base64url SHA-256 hash")
	}
	return Identity(s), nil
}

// String returns the identity as text.
func (id Identity) String() string { return string(id) }

// Hex returns the identity in KES's form, the SHA-256 as 64 lower-case
// hexadecimal digits; "" if id is not a valid identity.
func (id Identity) Hex() string {
	canon, err := ParseIdentity(string(id))
	if err != nil {
		return ""
	}
	sum, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(string(canon), identityPrefix))
	if err != nil {
		return ""
	}
	return hex.EncodeToString(sum)
}
