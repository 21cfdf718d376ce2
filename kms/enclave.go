package kms

import (
	"context"
	"time"

	"github.com/minkms/minkms/storage/kv"
)

// EnclaveInfo describes an enclave.
type EnclaveInfo struct {
	Name      string
	CreatedAt time.Time
	CreatedBy Identity
}

// CreateEnclave creates an empty enclave. Only cluster admins may. If it
// exists it returns ErrEnclaveExists.
func (s *Service) CreateEnclave(ctx context.Context, c Caller, name string) (EnclaveInfo, error) {
	if err := ValidName(name); err != nil {
		return EnclaveInfo{}, err
	}
	if err := authorizeCluster(c); err != nil {
		return EnclaveInfo{}, err
	}
	rec := enclaveRecord{CreatedAt: s.now().UTC(), CreatedBy: c.Identity}
	err := s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustNotExist, Bucket: enclavesBucket, Name: name, Code: codeEnclaveExists}},
		Apply:   []kv.Mutation{put(enclavesBucket, name, rec)},
	})
	if err != nil {
		return EnclaveInfo{}, err
	}
	return EnclaveInfo{Name: name, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy}, nil
}

// DescribeEnclave describes an enclave. Cluster admins may describe every
// enclave, enclave admins their own.
func (s *Service) DescribeEnclave(ctx context.Context, c Caller, name string) (EnclaveInfo, error) {
	if err := s.authorizeAdmin(ctx, c, name); err != nil {
		return EnclaveInfo{}, err
	}
	var rec enclaveRecord
	if _, err := s.get(ctx, enclavesBucket, name, &rec, enclaveErr(c)); err != nil {
		return EnclaveInfo{}, err
	}
	return EnclaveInfo{Name: name, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy}, nil
}

// ListEnclaves returns a page of enclave names. Only cluster admins may.
func (s *Service) ListEnclaves(ctx context.Context, c Caller, o ListOptions) (Page, error) {
	if err := authorizeCluster(c); err != nil {
		return Page{}, err
	}
	return s.list(ctx, enclavesBucket, o, ValidName, nil)
}

// DeleteEnclave deletes an enclave with all its keys, identities and
// policies, in one change. Only cluster admins may; the default enclave
// cannot be deleted (Invalid).
//
// The identities' index entries are deleted with it. An identity created
// in the enclave while it is being deleted may leave an index entry
// behind; such an entry names an identity its enclave does not have, so
// Caller treats it as unknown and CreateIdentity replaces it.
func (s *Service) DeleteEnclave(ctx context.Context, c Caller, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := authorizeCluster(c); err != nil {
		return err
	}
	if name == DefaultEnclave {
		return Invalidf("the default enclave cannot be deleted")
	}
	muts := []kv.Mutation{
		{Kind: kv.Delete, Bucket: enclavesBucket, Name: name},
		{Kind: kv.DeleteBucket, Bucket: enclaveBucket(name)},
	}
	for after := ""; ; {
		ids, err := s.r.List(ctx, identitiesBucket(name), "", after, maxPageSize)
		if err != nil {
			return stateErr("listing identities", err)
		}
		for _, id := range ids {
			muts = append(muts, kv.Mutation{Kind: kv.Delete, Bucket: indexBucket, Name: id})
		}
		if len(ids) < maxPageSize {
			break
		}
		after = ids[len(ids)-1]
	}
	return s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustExist, Bucket: enclavesBucket, Name: name, Code: codeEnclaveNotFound}},
		Apply:   muts,
	})
}
