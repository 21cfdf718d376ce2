package api

import (
	"crypto"
	"fmt"
	"time"

	"github.com/minkms/minkms/idproof"
)

// Identity proofs. An enclave admin may let an identity into its enclave
// only with the consent of the identity's key holder: a short-lived token,
// signed by the identity's private key, that names the cluster, the
// enclave, the identity and an expiry. The key holder makes one and hands it
// to the admin, who sends it in CreateIdentityRequest.Proof. Cluster admins
// need none. docs/api.md describes the token.

// DefaultProofLifetime and MaxProofLifetime bound how long a proof is valid.
const (
	DefaultProofLifetime = idproof.DefaultLifetime
	MaxProofLifetime     = idproof.MaxLifetime
)

// IdentityProofClaims is what an identity proof says.
type IdentityProofClaims = idproof.Claims

// NewIdentityProof returns a proof by signer, the private key of an
// identity, that it agrees to be let into enclave of the cluster clusterID
// (VersionResponse.ClusterID names it). It is valid from now for lifetime:
// DefaultProofLifetime if 0, at most MaxProofLifetime. signer is an
// Ed25519, ECDSA P-256/P-384 or RSA (2048 to 8192 bits) key, such as the
// PrivateKey of a tls.Certificate.
func NewIdentityProof(signer crypto.Signer, clusterID, enclave string, lifetime time.Duration) (string, error) {
	tok, err := idproof.Sign(signer, clusterID, enclave, time.Now(), lifetime)
	if err != nil {
		return "", fmt.Errorf("api: %w", err)
	}
	return tok, nil
}

// IdentityProof returns a proof by k that its identity agrees to be let
// into enclave of the cluster clusterID; see NewIdentityProof.
func (k *APIKey) IdentityProof(clusterID, enclave string, lifetime time.Duration) (string, error) {
	return NewIdentityProof(k.priv, clusterID, enclave, lifetime)
}

// ParseIdentityProof returns what a proof claims, once it has checked that
// the proof is well formed and signed by the key of the identity it names.
// Whether it fits a request (cluster, enclave, identity, expiry) is
// IdentityProofClaims.Check's to say; the server checks both.
func ParseIdentityProof(token string) (IdentityProofClaims, error) {
	c, err := idproof.Parse(token)
	if err != nil {
		return IdentityProofClaims{}, fmt.Errorf("api: %w", err)
	}
	return c, nil
}
