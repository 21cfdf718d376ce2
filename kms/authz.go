package kms

import (
	"context"
	"strings"
)

// Authorisation, in one place. The rules:
//
//   - Cluster admins (Options.Admins) may do everything in every enclave.
//   - An enclave admin may do everything inside its own enclave: keys,
//     identities and policies, but not create, list or delete enclaves;
//     and it may bind an identity to its enclave only with an identity
//     proof from the identity's key holder (see consent.go). An identity
//     bound elsewhere is ErrNotAllowed to it, as a missing proof is; only
//     cluster admins get ErrIdentityExists for it.
//   - A user may do key actions in its own enclave that its policy allows,
//     and nothing else.
//   - Anyone may call Self.
//   - Another enclave than the caller's own is ErrNotAllowed. A missing
//     enclave is ErrEnclaveNotFound for cluster admins and ErrNotAllowed
//     for everyone else, who must not learn which enclaves exist.
//
// Every operation authorises before it reads what it acts on, so that a
// caller who may not act on a key does not learn whether it exists.

// enclaveErr is the error for a missing enclave as c may see it.
func enclaveErr(c Caller) error {
	if c.ClusterAdmin {
		return ErrEnclaveNotFound
	}
	return ErrNotAllowed
}

// enter checks that c may act inside enclave at all and that the enclave
// exists. It returns the policy that limits c: nil for admins, who are not
// limited inside the enclave.
func (s *Service) enter(ctx context.Context, c Caller, enclave string) (*Policy, bool, error) {
	if err := ValidName(enclave); err != nil {
		return nil, false, err
	}
	if c.Identity == "" || !c.ClusterAdmin && c.Enclave != enclave {
		return nil, false, ErrNotAllowed
	}
	errMissing := enclaveErr(c)
	e, err := s.cached(ctx, cacheKey{kind: kindEnclave, enclave: enclave}, func() (*cacheEntry, error) {
		en, err := s.r.Get(ctx, enclavesBucket, enclave)
		if errNotExist(err) {
			return nil, errMissing
		}
		if err != nil {
			return nil, stateErr("reading "+enclavesBucket, err)
		}
		return newEntry(en.Index), nil
	})
	if err != nil {
		return nil, false, err
	}
	e.release()
	if c.ClusterAdmin || c.Admin {
		return nil, true, nil
	}
	if c.Policy == "" {
		return nil, false, ErrNotAllowed
	}
	e, err = s.cached(ctx, cacheKey{kind: kindPolicy, enclave: enclave, name: c.Policy}, func() (*cacheEntry, error) {
		var rec policyRecord
		pe, err := s.getEntry(ctx, policiesBucket(enclave), c.Policy, &rec, ErrNotAllowed)
		if err != nil {
			// A user whose policy was deleted may do nothing.
			return nil, err
		}
		ce := newEntry(pe.Index)
		ce.policy = &rec.Policy
		return ce, nil
	})
	if err != nil {
		return nil, false, err
	}
	// Policies hold no secret: the entry needs no release to be wiped,
	// and the policy stays valid after it. Callers only read it.
	e.release()
	return e.policy, false, nil
}

// authorizeKey checks that c may do the key action a on the key name in
// enclave. Both names are validated first.
func (s *Service) authorizeKey(ctx context.Context, c Caller, enclave string, a Action, name string) error {
	if err := ValidName(enclave); err != nil {
		return err
	}
	if err := ValidName(name); err != nil {
		return err
	}
	if !strings.HasPrefix(string(a), "key:") {
		return ErrNotAllowed
	}
	pol, admin, err := s.enter(ctx, c, enclave)
	if err != nil {
		return err
	}
	if !admin && !pol.Allows(a, name) {
		return ErrNotAllowed
	}
	return nil
}

// authorizeKeyList checks that c may list keys in enclave and returns the
// filter of the names c may see: nil for all.
func (s *Service) authorizeKeyList(ctx context.Context, c Caller, enclave string) (func(string) bool, error) {
	pol, admin, err := s.enter(ctx, c, enclave)
	if err != nil {
		return nil, err
	}
	if admin {
		return nil, nil
	}
	if !pol.allowsSome(ActionKeyList) {
		return nil, ErrNotAllowed
	}
	return func(name string) bool { return pol.Allows(ActionKeyList, name) }, nil
}

// authorizeAdmin checks that c is an admin of enclave: a cluster admin or
// an enclave admin of that enclave. Identities and policies need it.
func (s *Service) authorizeAdmin(ctx context.Context, c Caller, enclave string) error {
	_, admin, err := s.enter(ctx, c, enclave)
	if err != nil {
		return err
	}
	if !admin {
		return ErrNotAllowed
	}
	return nil
}

// authorizeCluster checks that c is a cluster admin: creating, listing and
// deleting enclaves need it.
func authorizeCluster(c Caller) error {
	if c.Identity == "" || !c.ClusterAdmin {
		return ErrNotAllowed
	}
	return nil
}

// AuthorizeNode checks that c may do the node action a (ActionLogRead,
// ActionAuditRead, ActionMetricsRead) on the node named node ("all" for
// every node at once).
// Cluster admins may; users whose policy allows a on that name may;
// enclave admins may not unless they are cluster admins, as a node's log
// and audit trail span every enclave. Anyone else gets ErrNotAllowed.
func (s *Service) AuthorizeNode(ctx context.Context, c Caller, a Action, node string) error {
	if c.Identity == "" {
		return ErrNotAllowed
	}
	if c.ClusterAdmin {
		return nil
	}
	if c.Admin || c.Policy == "" || (a != ActionLogRead && a != ActionAuditRead && a != ActionMetricsRead) {
		return ErrNotAllowed
	}
	pol, _, err := s.enter(ctx, c, c.Enclave)
	if err != nil {
		return err
	}
	if pol == nil || !pol.Allows(a, node) {
		return ErrNotAllowed
	}
	return nil
}
