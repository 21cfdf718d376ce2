package kms

import (
	"context"
	"fmt"

	"github.com/minkms/minkms/idproof"
)

// Binding an identity to an enclave, and who must agree.
//
// An identity is a public-key hash, which anyone who has seen the client's
// certificate knows. If any enclave admin could bind any unknown identity,
// it could bind a client that has not been let in yet to its own enclave:
// the client's KES calls, which name no enclave, would then land there
// silently, and the data keys they make would be the admin's to decrypt.
// So binding needs the consent of the key holder, proved by a signature of
// its key over this cluster, the enclave and an expiry (package idproof),
// unless a cluster admin, who may do everything anyway, binds it.
//
// An enclave admin also learns nothing of identities outside its enclave:
// "bound elsewhere" is answered as "not allowed", like a missing proof. A
// proof is checked before the state is read, so its answers depend on the
// token and the request only, which the caller knows anyway.

// checkConsent returns nil if c may bind id to enclave with proof (which
// may be empty): cluster admins need none, enclave admins a valid one.
func (s *Service) checkConsent(c Caller, enclave string, id Identity, proof string) error {
	if proof == "" {
		if c.ClusterAdmin {
			return nil
		}
		return fmt.Errorf("%w: an enclave admin needs an identity proof to add an identity", ErrNotAllowed)
	}
	if err := idproof.Verify(proof, s.clusterID(), enclave, string(id), s.now()); err != nil {
		return &proofError{err}
	}
	return nil
}

// proofError is an invalid proof: its message (for the log) says why, and
// it is ErrInvalidProof to callers.
type proofError struct{ err error }

func (e *proofError) Error() string   { return e.err.Error() }
func (e *proofError) Unwrap() []error { return []error{ErrInvalidProof, e.err} }

// identityTaken is the error for an id that is bound already, as c may see
// it: ErrIdentityExists for cluster admins and for an id in c's own
// enclave, which c may list anyway; ErrNotAllowed otherwise.
func (s *Service) identityTaken(ctx context.Context, c Caller, enclave string, id Identity) error {
	if c.ClusterAdmin {
		return ErrIdentityExists
	}
	ok, err := s.exists(ctx, identitiesBucket(enclave), string(id))
	if err != nil {
		return err
	}
	if ok {
		return ErrIdentityExists
	}
	return fmt.Errorf("%w: the identity is a cluster admin or belongs to another enclave", ErrNotAllowed)
}
