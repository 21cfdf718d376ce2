package kms

import (
	"context"
	"time"

	"github.com/minkms/minkms/storage/kv"
)

// PolicyInfo describes a stored policy.
type PolicyInfo struct {
	Name      string
	Enclave   string
	Policy    Policy
	CreatedAt time.Time
	CreatedBy Identity
}

// CreatePolicy stores the policy name in enclave; admins of the enclave
// may. If it exists and replace is false it returns ErrPolicyExists; with
// replace it overwrites it, and the identities that use it are bound by the
// new rules from their next request.
func (s *Service) CreatePolicy(ctx context.Context, c Caller, enclave, name string, p Policy, replace bool) (PolicyInfo, error) {
	if err := ValidName(enclave); err != nil {
		return PolicyInfo{}, err
	}
	if err := ValidName(name); err != nil {
		return PolicyInfo{}, err
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return PolicyInfo{}, err
	}
	if err := p.Validate(); err != nil {
		return PolicyInfo{}, err
	}
	rec := policyRecord{Policy: p.clone(), CreatedAt: s.now().UTC(), CreatedBy: c.Identity}
	change := kv.Change{
		Require: []kv.Condition{{Kind: kv.MustExist, Bucket: enclavesBucket, Name: enclave, Code: codeEnclaveNotFound}},
		Apply:   []kv.Mutation{put(policiesBucket(enclave), name, rec)},
	}
	if !replace {
		change.Require = append(change.Require, kv.Condition{Kind: kv.MustNotExist, Bucket: policiesBucket(enclave), Name: name, Code: codePolicyExists})
	}
	if err := s.propose(ctx, c, change); err != nil {
		return PolicyInfo{}, err
	}
	return PolicyInfo{Name: name, Enclave: enclave, Policy: rec.Policy, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy}, nil
}

// DescribePolicy returns a stored policy; admins of the enclave may.
func (s *Service) DescribePolicy(ctx context.Context, c Caller, enclave, name string) (PolicyInfo, error) {
	if err := ValidName(enclave); err != nil {
		return PolicyInfo{}, err
	}
	if err := ValidName(name); err != nil {
		return PolicyInfo{}, err
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return PolicyInfo{}, err
	}
	var rec policyRecord
	if _, err := s.get(ctx, policiesBucket(enclave), name, &rec, ErrPolicyNotFound); err != nil {
		return PolicyInfo{}, err
	}
	return PolicyInfo{Name: name, Enclave: enclave, Policy: rec.Policy, CreatedAt: rec.CreatedAt, CreatedBy: rec.CreatedBy}, nil
}

// ListPolicies returns a page of the policy names of enclave; admins of
// the enclave may.
func (s *Service) ListPolicies(ctx context.Context, c Caller, enclave string, o ListOptions) (Page, error) {
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return Page{}, err
	}
	return s.list(ctx, policiesBucket(enclave), o, ValidName, nil)
}

// DeletePolicy deletes a policy; admins of the enclave may. It does not
// refuse while identities use the policy (no precondition could make that
// check race-free): users of a missing policy are allowed nothing until
// it is created again. A missing policy is ErrPolicyNotFound.
func (s *Service) DeletePolicy(ctx context.Context, c Caller, enclave, name string) error {
	if err := ValidName(enclave); err != nil {
		return err
	}
	if err := ValidName(name); err != nil {
		return err
	}
	if err := s.authorizeAdmin(ctx, c, enclave); err != nil {
		return err
	}
	return s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustExist, Bucket: policiesBucket(enclave), Name: name, Code: codePolicyNotFound}},
		Apply:   []kv.Mutation{{Kind: kv.Delete, Bucket: policiesBucket(enclave), Name: name}},
	})
}
