package kms

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
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

// ParseIdentity returns s as an Identity. If s is not in the canonical form
// IdentityOf produces, it returns an Invalid error.
func ParseIdentity(s string) (Identity, error) {
	rest, ok := strings.CutPrefix(s, identityPrefix)
	if !ok {
		return "", Invalidf("invalid identity: must start with %q", identityPrefix)
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
