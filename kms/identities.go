package kms

import (
	"context"
	"errors"
	"time"

	"github.com/minkms/minkms/storage/kv"
)

// IdentityInfo describes an identity.
type IdentityInfo struct {
	Identity     Identity
	Enclave      string
	Admin        bool
	ClusterAdmin bool
	Policy       string
	CreatedAt    time.Time
	CreatedBy    Identity
}

// CreateIdentity assigns id to enclave, as an enclave admin (admin) or as a
// user bound by policy. A user needs a policy, and a named policy must exist
// in the enclave (ErrPolicyNotFound).
//
// Cluster admins may bind any identity. An enclave admin may bind one to its
// own enclave only with proof, an idproof token by which the identity's key
// holder agrees to that enclave of this cluster; without one it gets
// ErrNotAllowed, with an invalid one ErrInvalidProof. A proof that is sent
// is checked, also for cluster admins.
//
// An identity belongs to at most one enclave. If id is known in any enclave
// or is a cluster admin, a cluster admin gets ErrIdentityExists; an enclave
// admin gets it only if id is in its own enclave and ErrNotAllowed
// otherwise, so that it learns nothing of other enclaves.
func (s *Service) CreateIdentity(ctx context.Context, c Caller, enclave string, id Identity, admin bool, policy, proof string) (IdentityInfo, error) {
	if err := ValidName(enclave); err != nil {
		return IdentityInfo{}, err
	}
	id, err := ParseIdentity(string(id))
	if err != nil {
		return IdentityInfo{}, err
	}
	if policy != "" {
		if err := ValidName(policy); err != nil {
			return IdentityInfo{}, err
		}
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return IdentityInfo{}, err
	}
	if !admin && policy == "" {
		return IdentityInfo{}, Invalidf("invalid identity: a user identity needs a policy")
	}
	if err := s.checkConsent(c, enclave, id, proof); err != nil {
		return IdentityInfo{}, err
	}
	if s.admins[id] {
		return IdentityInfo{}, s.identityTaken(ctx, c, enclave, id)
	}
	rec := identityRecord{Admin: admin, Policy: policy, CreatedAt: s.now().UTC(), CreatedBy: c.Identity}
	info := IdentityInfo{Identity: id, Enclave: enclave, Admin: admin, Policy: policy, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy}

	for range rotateAttempts {
		// The index entry must not exist, or be a stale one (see
		// DeleteEnclave) that we replace at its revision.
		index := kv.Condition{Kind: kv.MustNotExist, Bucket: indexBucket, Name: string(id), Code: codeIdentityExists}
		if rev, stale, err := s.staleIndex(ctx, id); err != nil {
			return IdentityInfo{}, err
		} else if stale {
			index = kv.Condition{Kind: kv.AtRevision, Bucket: indexBucket, Name: string(id), Revision: rev, Code: codeIdentityExists}
		}
		change := kv.Change{
			Require: []kv.Condition{
				{Kind: kv.MustExist, Bucket: enclavesBucket, Name: enclave, Code: codeEnclaveNotFound},
				index,
			},
			Apply: []kv.Mutation{
				put(indexBucket, string(id), indexRecord{Enclave: enclave}),
				put(identitiesBucket(enclave), string(id), rec),
			},
		}
		if policy != "" {
			change.Require = append(change.Require, kv.Condition{Kind: kv.MustExist, Bucket: policiesBucket(enclave), Name: policy, Code: codePolicyNotFound})
		}
		err := s.propose(ctx, c, change)
		if !errors.Is(err, ErrIdentityExists) {
			if err != nil {
				return IdentityInfo{}, err
			}
			return info, nil
		}
		// The index entry exists now, or changed: it is ErrIdentityExists
		// unless it is stale, which the next round finds out.
		if _, stale, err := s.staleIndex(ctx, id); err != nil {
			return IdentityInfo{}, err
		} else if !stale {
			return IdentityInfo{}, s.identityTaken(ctx, c, enclave, id)
		}
	}
	return IdentityInfo{}, s.identityTaken(ctx, c, enclave, id)
}

// errNoIndex marks an identity without an index entry.
var errNoIndex = errors.New("no index entry")

// staleIndex reports whether id has an index entry whose enclave does not
// have the identity, and the entry's revision. No entry is not stale.
func (s *Service) staleIndex(ctx context.Context, id Identity) (uint64, bool, error) {
	var idx indexRecord
	rev, err := s.get(ctx, indexBucket, string(id), &idx, errNoIndex)
	if errors.Is(err, errNoIndex) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	ok, err := s.exists(ctx, identitiesBucket(idx.Enclave), string(id))
	if err != nil {
		return 0, false, err
	}
	return rev, !ok, nil
}

// DescribeIdentity describes an identity of enclave; admins of the enclave
// may. If enclave has no such identity it returns ErrIdentityNotFound.
func (s *Service) DescribeIdentity(ctx context.Context, c Caller, enclave string, id Identity) (IdentityInfo, error) {
	if err := ValidName(enclave); err != nil {
		return IdentityInfo{}, err
	}
	id, err := ParseIdentity(string(id))
	if err != nil {
		return IdentityInfo{}, err
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return IdentityInfo{}, err
	}
	return s.describeIdentity(ctx, enclave, id)
}

func (s *Service) describeIdentity(ctx context.Context, enclave string, id Identity) (IdentityInfo, error) {
	var rec identityRecord
	if _, err := s.get(ctx, identitiesBucket(enclave), string(id), &rec, ErrIdentityNotFound); err != nil {
		return IdentityInfo{}, err
	}
	return IdentityInfo{
		Identity: id, Enclave: enclave, Admin: rec.Admin, Policy: rec.Policy,
		CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy,
	}, nil
}

// ListIdentities returns a page of the identities of enclave; admins of
// the enclave may. Cluster admins are not stored and not listed.
func (s *Service) ListIdentities(ctx context.Context, c Caller, enclave string, o ListOptions) (Page, error) {
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return Page{}, err
	}
	validate := func(s string) error { _, err := ParseIdentity(s); return err }
	return s.list(ctx, identitiesBucket(enclave), o, validate, nil)
}

// DeleteIdentity removes id from enclave, and from the index, so that it
// may be assigned again; admins of the enclave may. If enclave has no such
// identity it returns ErrIdentityNotFound.
func (s *Service) DeleteIdentity(ctx context.Context, c Caller, enclave string, id Identity) error {
	if err := ValidName(enclave); err != nil {
		return err
	}
	id, err := ParseIdentity(string(id))
	if err != nil {
		return err
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return err
	}
	return s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustExist, Bucket: identitiesBucket(enclave), Name: string(id), Code: codeIdentityNotFound}},
		Apply: []kv.Mutation{
			{Kind: kv.Delete, Bucket: identitiesBucket(enclave), Name: string(id)},
			{Kind: kv.Delete, Bucket: indexBucket, Name: string(id)},
		},
	})
}

// Self describes the caller, and returns its policy: nil for admins, and
// for users whose policy no longer exists. Anyone may call it.
func (s *Service) Self(ctx context.Context, c Caller) (IdentityInfo, *Policy, error) {
	if c.Identity == "" {
		return IdentityInfo{}, nil, ErrNoIdentity
	}
	if c.ClusterAdmin {
		return IdentityInfo{Identity: c.Identity, Enclave: c.Enclave, Admin: true, ClusterAdmin: true}, nil, nil
	}
	info, err := s.describeIdentity(ctx, c.Enclave, c.Identity)
	if errors.Is(err, ErrIdentityNotFound) {
		return IdentityInfo{}, nil, ErrNotAllowed
	}
	if err != nil {
		return IdentityInfo{}, nil, err
	}
	if info.Admin || info.Policy == "" {
		return info, nil, nil
	}
	var rec policyRecord
	_, err = s.get(ctx, policiesBucket(c.Enclave), info.Policy, &rec, ErrPolicyNotFound)
	if errors.Is(err, ErrPolicyNotFound) {
		return info, nil, nil
	}
	if err != nil {
		return IdentityInfo{}, nil, err
	}
	return info, &rec.Policy, nil
}
