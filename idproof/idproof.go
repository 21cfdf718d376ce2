// Package idproof is the identity proof: a short-lived token by which the
// holder of a private key agrees that its identity may be bound to one
// enclave of one cluster. An enclave admin must present one to let an
// identity into its enclave (cluster admins need none), so that nobody can
// claim a client's identity, which is only a public-key hash and easy to
// learn, without the client's consent.
//
// A token is
//
//	"p1:" + base64url(payload) + "." + base64url(signature)
//
// (unpadded base64url). The payload is JSON:
//
//	{"cluster_id": "c-…", "enclave": "tenant-1", "identity": "h1:…",
//	 "issued_at": 1767225600, "expires": 1767229200,
//	 "public_key": "<standard base64 of the DER SubjectPublicKeyInfo>"}
//
// The identity is "h1:" + base64url(SHA-256(public_key)), so the token
// carries the key that verifies it and the verifier checks that this key is
// the identity's before it checks the signature. The signature is made by
// that key over the message signedPrefix + payload: Ed25519 signs the
// message itself; ECDSA (P-256 with SHA-256, P-384 with SHA-384) signs its
// digest in ASN.1 form; RSA (2048 to 8192 bits) signs its SHA-256 digest
// with PSS, salt as long as the digest. The lifetime (expires − issued_at)
// is at most MaxLifetime.
//
// The package depends on the standard library only: the SDK makes tokens
// with it, the key-management domain verifies them.
package idproof

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// Prefix starts every token of this version.
	Prefix = "p1:"

	// DefaultLifetime is the lifetime of a token when none is asked for.
	DefaultLifetime = time.Hour
	// MaxLifetime is the longest lifetime a token may have.
	MaxLifetime = 24 * time.Hour

	// ClockSkew is how far in the future issued_at may lie, for clocks that
	// run a little ahead of the verifier's.
	ClockSkew = 5 * time.Minute

	// MaxLen bounds the text of a token (an RSA-8192 token is about 3 KiB).
	MaxLen = 8 << 10

	// signedPrefix separates the signatures of proofs from every other
	// use of the same key (a TLS handshake signs other things).
	signedPrefix = "minkms identity proof v1\x00"

	identityPrefix = "h1:"
)

// ErrInvalid is the error of every token that is malformed, not signed by
// the identity's key, or made for another cluster, enclave or identity, or
// out of its lifetime. The error returned wraps it and says which.
var ErrInvalid = errors.New("invalid identity proof")

// Claims is what a token says: the holder of the key of Identity agrees to
// be bound to Enclave in the cluster ClusterID, from IssuedAt to Expires.
type Claims struct {
	ClusterID string
	Enclave   string
	Identity  string
	IssuedAt  time.Time
	Expires   time.Time
}

// payload is the signed JSON form of Claims and the public key.
type payload struct {
	ClusterID string `json:"cluster_id"`
	Enclave   string `json:"enclave"`
	Identity  string `json:"identity"`
	IssuedAt  int64  `json:"issued_at"`
	Expires   int64  `json:"expires"`
	PublicKey []byte `json:"public_key"`
}

// Sign returns a token for signer's identity in the cluster clusterID and
// enclave, valid from now for lifetime (DefaultLifetime if 0). The key must
// be Ed25519, ECDSA P-256 or P-384, or RSA of 2048 to 8192 bits; lifetime at
// most MaxLifetime.
func Sign(signer crypto.Signer, clusterID, enclave string, now time.Time, lifetime time.Duration) (string, error) {
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	if lifetime < time.Second || lifetime > MaxLifetime {
		return "", fmt.Errorf("identity proof: the lifetime must be between 1s and %s, not %s", MaxLifetime, lifetime)
	}
	if clusterID == "" || enclave == "" {
		return "", errors.New("identity proof: the cluster id and the enclave must not be empty")
	}
	pub := signer.Public()
	if err := checkKey(pub); err != nil {
		return "", fmt.Errorf("identity proof: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("identity proof: marshal the public key: %w", err)
	}
	p := payload{
		ClusterID: clusterID,
		Enclave:   enclave,
		Identity:  IdentityOf(spki),
		IssuedAt:  now.Unix(),
		Expires:   now.Add(lifetime).Unix(),
		PublicKey: spki,
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("identity proof: %w", err)
	}
	digest, opts := digestOf(pub, message(body))
	sig, err := signer.Sign(rand.Reader, digest, opts)
	if err != nil {
		return "", fmt.Errorf("identity proof: sign: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Parse returns the claims of token once it has checked that token is well
// formed, that its public key is the identity's and that the key signed it,
// and that its lifetime is at most MaxLifetime. It does not check the
// claims against a request or a clock: Check does. Every failure wraps
// ErrInvalid and says why.
func Parse(token string) (Claims, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), Prefix)
	if !ok {
		return Claims{}, fmt.Errorf("%w: it does not start with %q", ErrInvalid, Prefix)
	}
	if len(rest) > MaxLen {
		return Claims{}, fmt.Errorf("%w: longer than %d characters", ErrInvalid, MaxLen)
	}
	b64body, b64sig, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, fmt.Errorf("%w: no signature", ErrInvalid)
	}
	enc := base64.RawURLEncoding.Strict()
	body, err1 := enc.DecodeString(b64body)
	sig, err2 := enc.DecodeString(b64sig)
	if err1 != nil || err2 != nil {
		return Claims{}, fmt.Errorf("%w: not unpadded base64url", ErrInvalid)
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return Claims{}, fmt.Errorf("%w: the payload is not valid JSON", ErrInvalid)
	}
	if p.ClusterID == "" || p.Enclave == "" || p.Identity == "" || p.IssuedAt == 0 || p.Expires == 0 {
		return Claims{}, fmt.Errorf("%w: a field is missing", ErrInvalid)
	}
	if IdentityOf(p.PublicKey) != p.Identity {
		return Claims{}, fmt.Errorf("%w: the public key is not the identity's", ErrInvalid)
	}
	pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: the public key does not parse", ErrInvalid)
	}
	if err := checkKey(pub); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !verify(pub, message(body), sig) {
		return Claims{}, fmt.Errorf("%w: the signature does not verify", ErrInvalid)
	}
	c := Claims{
		ClusterID: p.ClusterID,
		Enclave:   p.Enclave,
		Identity:  p.Identity,
		IssuedAt:  time.Unix(p.IssuedAt, 0).UTC(),
		Expires:   time.Unix(p.Expires, 0).UTC(),
	}
	if life := c.Expires.Sub(c.IssuedAt); life <= 0 || life > MaxLifetime {
		return Claims{}, fmt.Errorf("%w: its lifetime is %s, more than %s or not positive", ErrInvalid, life, MaxLifetime)
	}
	return c, nil
}

// Check returns nil if c binds identity to enclave in the cluster clusterID
// and is valid at now. Otherwise it returns an error that wraps ErrInvalid
// and names the field that differs.
func (c Claims) Check(clusterID, enclave, identity string, now time.Time) error {
	switch {
	case clusterID == "" || c.ClusterID != clusterID:
		return fmt.Errorf("%w: it is for cluster %q, not %q", ErrInvalid, c.ClusterID, clusterID)
	case c.Enclave != enclave:
		return fmt.Errorf("%w: it is for enclave %q, not %q", ErrInvalid, c.Enclave, enclave)
	case c.Identity != identity:
		return fmt.Errorf("%w: it is for identity %s, not %s", ErrInvalid, c.Identity, identity)
	case !now.Before(c.Expires):
		return fmt.Errorf("%w: it expired at %s", ErrInvalid, c.Expires.Format(time.RFC3339))
	case c.IssuedAt.After(now.Add(ClockSkew)):
		return fmt.Errorf("%w: it is issued in the future, at %s", ErrInvalid, c.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

// Verify parses token and checks it, as Parse and Check do.
func Verify(token, clusterID, enclave, identity string, now time.Time) error {
	c, err := Parse(token)
	if err != nil {
		return err
	}
	return c.Check(clusterID, enclave, identity, now)
}

// IdentityOf returns the identity of a DER SubjectPublicKeyInfo:
// "h1:" + base64url (no padding) of its SHA-256.
func IdentityOf(spki []byte) string {
	sum := sha256.Sum256(spki)
	return identityPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

func message(body []byte) []byte {
	return append([]byte(signedPrefix), body...)
}

// checkKey refuses the keys a token may not be signed with.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return errors.New("an ECDSA key must be on P-256 or P-384")
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return fmt.Errorf("an RSA key must have 2048 to 8192 bits, not %d", n)
		}
		return nil
	default:
		return fmt.Errorf("unsupported key type %T: use Ed25519, ECDSA P-256/P-384 or RSA", pub)
	}
}

// digestOf returns what a crypto.Signer of pub signs for msg, and how.
func digestOf(pub crypto.PublicKey, msg []byte) ([]byte, crypto.SignerOpts) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			sum := sha512.Sum384(msg)
			return sum[:], crypto.SHA384
		}
		sum := sha256.Sum256(msg)
		return sum[:], crypto.SHA256
	case *rsa.PublicKey:
		sum := sha256.Sum256(msg)
		return sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	default: // Ed25519 signs the message itself
		return msg, crypto.Hash(0)
	}
}

func verify(pub crypto.PublicKey, msg, sig []byte) bool {
	digest, opts := digestOf(pub, msg)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPSS(k, crypto.SHA256, digest, sig, opts.(*rsa.PSSOptions)) == nil
	}
	return false
}
