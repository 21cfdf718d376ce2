package kms

import (
	"context"
	"fmt"
)

// ErrNotFresh is returned by Fresh for a state that holds more than Init
// writes. Its message is what a restore into such a cluster answers.
var ErrNotFresh = &Error{Exists, "the cluster is not fresh: it holds keys, enclaves, identities or policies that a restore would replace"}

// Fresh returns nil if the state holds nothing but what Init writes: the
// default enclave, without keys, identities or policies, and no other
// enclave. Otherwise it returns an error wrapping ErrNotFresh that names
// one thing the state holds. A restore replaces the whole state, so it is
// allowed into a fresh cluster only (unless forced).
func (s *Service) Fresh(ctx context.Context) error {
	enclaves, err := s.r.List(ctx, enclavesBucket, "", "", 2)
	if err != nil {
		return stateErr("listing enclaves", err)
	}
	for _, e := range enclaves {
		if e != DefaultEnclave {
			return notFresh("enclave %q", e)
		}
	}
	checks := []struct{ what, bucket string }{
		{"key", keysBucket(DefaultEnclave)},
		{"identity", identitiesBucket(DefaultEnclave)},
		{"policy", policiesBucket(DefaultEnclave)},
		{"identity", indexBucket},
	}
	for _, c := range checks {
		names, err := s.r.List(ctx, c.bucket, "", "", 1)
		if err != nil {
			return stateErr("listing "+c.bucket, err)
		}
		if len(names) > 0 {
			return notFresh("%s %q", c.what, names[0])
		}
	}
	return nil
}

func notFresh(format string, args ...any) error {
	return &Error{Exists, ErrNotFresh.Message + " (" + fmt.Sprintf(format, args...) + ")"}
}
