package api

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// ErrInvalidAPIKey is returned (wrapped, with the reason) by ParseAPIKey for
// text that is not an API key. The error never contains the text itself.
var ErrInvalidAPIKey = errors.New("invalid API key")

const (
	apiKeyPrefix   = "k1:"
	identityPrefix = "h1:"

	// certValidity is how long a certificate derived from an API key is
	// valid; certBackdate allows for clocks that run a little behind ours.
	certValidity = 90 * 24 * time.Hour
	certBackdate = 5 * time.Minute
)

// APIKey is an Ed25519 private key that stands for a client identity. A
// client derives a self-signed client certificate from it on the fly, so an
// application needs no PKI of its own: the server authenticates the
// certificate by the hash of its public key, which is the key's Identity.
//
// The text form, returned by String, is a secret: keep it out of logs.
type APIKey struct {
	priv ed25519.PrivateKey
}

// GenerateAPIKey returns a new random API key.
func GenerateAPIKey() (*APIKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: generate API key: %w", err)
	}
	return &APIKey{priv: priv}, nil
}

// ParseAPIKey parses the text form of an API key: "k1:" followed by the
// 32-byte Ed25519 seed in unpadded base64url. Surrounding white space is
// ignored. If s is not an API key, it returns an error that wraps
// ErrInvalidAPIKey and says why, without repeating s.
func ParseAPIKey(s string) (*APIKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, apiKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("api: %w: it does not start with %q", ErrInvalidAPIKey, apiKeyPrefix)
	}
	// Strict: one text per key, as String writes it (no stray bits in the
	// last character, no line breaks, which the lenient decoder skips).
	if strings.ContainsAny(rest, "\r\n") {
		return nil, fmt.Errorf("api: %w: it is not unpadded base64url after %q", ErrInvalidAPIKey, apiKeyPrefix)
	}
	seed, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("api: %w: it is not unpadded base64url after %q", ErrInvalidAPIKey, apiKeyPrefix)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("api: %w: it holds %d bytes, want %d", ErrInvalidAPIKey, len(seed), ed25519.SeedSize)
	}
	return &APIKey{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// String returns the text form of the key, "k1:" + base64url(seed). It is
// the secret itself.
func (k *APIKey) String() string {
	return apiKeyPrefix + base64.RawURLEncoding.EncodeToString(k.priv.Seed())
}

// Public returns the public key of k.
func (k *APIKey) Public() ed25519.PublicKey {
	return k.priv.Public().(ed25519.PublicKey)
}

// Identity returns the identity of k, the name a server knows it by:
// "h1:" + base64url (no padding) of the SHA-256 of the DER-encoded
// SubjectPublicKeyInfo of its public key. It equals IdentityOf any
// certificate derived from k.
func (k *APIKey) Identity() string {
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		// An Ed25519 public key always marshals.
		panic("api: marshal Ed25519 public key: " + err.Error())
	}
	return identityOfSPKI(spki)
}

// Certificate returns a new self-signed client certificate for k: its
// common name is k's identity, it is valid for client authentication only,
// from five minutes ago for 90 days.
func (k *APIKey) Certificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("api: certificate serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: k.Identity()},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k.priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("api: create client certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("api: parse client certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k.priv, Leaf: leaf}, nil
}

// IdentityOf returns the identity of a certificate: "h1:" + base64url (no
// padding) of the SHA-256 of its SubjectPublicKeyInfo.
func IdentityOf(cert *x509.Certificate) string {
	return identityOfSPKI(cert.RawSubjectPublicKeyInfo)
}

func identityOfSPKI(spki []byte) string {
	sum := sha256.Sum256(spki)
	return identityPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}
