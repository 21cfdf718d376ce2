package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/minkms/minkms/storage/kv"
)

// The layout of the state. Every value is JSON.
//
//	enclaves/<E>                 enclaveRecord
//	enclaves/<E>/keys/<name>     keyRing: all versions with their material
//	enclaves/<E>/policies/<name> policyRecord
//	enclaves/<E>/identities/<id> identityRecord
//	identities/<id>              indexRecord: the enclave of the identity
//
// The global identity index lets Caller find an identity's enclave with one
// Get, and its kv.MustNotExist precondition keeps an identity in at most one
// enclave.
const (
	enclavesBucket = "enclaves"
	indexBucket    = "identities"
)

func keysBucket(enclave string) string       { return enclavesBucket + "/" + enclave + "/keys" }
func policiesBucket(enclave string) string   { return enclavesBucket + "/" + enclave + "/policies" }
func identitiesBucket(enclave string) string { return enclavesBucket + "/" + enclave + "/identities" }
func enclaveBucket(enclave string) string    { return enclavesBucket + "/" + enclave }

// errNotExist reports whether a Reader error means the entry is missing.
func errNotExist(err error) bool { return errors.Is(err, kv.ErrNotExist) }

// errTimedOut and errCanceled answer a request whose own context ended
// while it read or changed the state: that is no statement about the
// cluster, so they are not ErrNoLeader.
var (
	errTimedOut = &Error{Unavailable, "request timed out"}
	errCanceled = &Error{Unavailable, "request cancelled"}
)

// stateErr turns an unexpected error of the state into an application
// error: an *Error stays as it is; ErrUnavailable becomes ErrNoLeader; the
// end of the caller's context becomes errTimedOut or errCanceled; anything
// else ErrInternal. All but the first keep the cause wrapped for the log.
func stateErr(op string, err error) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, ErrUnavailable):
		return fmt.Errorf("%s: %w: %w", op, ErrNoLeader, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", op, errTimedOut, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w: %w", op, errCanceled, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrInternal, err)
}

// get reads bucket/name as JSON into v and returns its revision. For a
// missing entry it returns notFound; other failures are mapped by stateErr.
func (s *Service) get(ctx context.Context, bucket, name string, v any, notFound error) (uint64, error) {
	e, err := s.getEntry(ctx, bucket, name, v, notFound)
	return e.Revision, err
}

// getEntry is get that returns the entry's revision and applied index (its
// Value is v's).
func (s *Service) getEntry(ctx context.Context, bucket, name string, v any, notFound error) (kv.Entry, error) {
	e, err := s.r.Get(ctx, bucket, name)
	if errNotExist(err) {
		return kv.Entry{}, notFound
	}
	if err != nil {
		return kv.Entry{}, stateErr("reading "+bucket, err)
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return kv.Entry{}, stateErr("decoding "+bucket, err)
	}
	e.Value = nil
	return e, nil
}

// exists reports whether bucket/name exists.
func (s *Service) exists(ctx context.Context, bucket, name string) (bool, error) {
	_, err := s.r.Get(ctx, bucket, name)
	if errNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, stateErr("reading "+bucket, err)
	}
	return true, nil
}

// The codes of the preconditions kms proposes. A code says what the failure
// of its precondition means; it travels through the raft log and comes back
// in the *kv.ConditionError.
const (
	codeEnclaveExists    = "enclave-exists"
	codeEnclaveNotFound  = "enclave-not-found"
	codeKeyExists        = "key-exists"
	codeKeyNotFound      = "key-not-found"
	codeKeyChanged       = "key-changed" // the key ring moved since it was read
	codeIdentityExists   = "identity-exists"
	codeIdentityNotFound = "identity-not-found"
	codePolicyExists     = "policy-exists"
	codePolicyNotFound   = "policy-not-found"
)

// conditionErrs maps the code of a failed precondition to the error kms
// answers. It is the one place where a code gets its meaning.
var conditionErrs = map[string]error{
	codeEnclaveExists:    ErrEnclaveExists,
	codeEnclaveNotFound:  ErrEnclaveNotFound, // hidden from all but cluster admins, see enclaveErr
	codeKeyExists:        ErrKeyExists,
	codeKeyNotFound:      ErrKeyNotFound,
	codeKeyChanged:       errConflict,
	codeIdentityExists:   ErrIdentityExists,
	codeIdentityNotFound: ErrIdentityNotFound,
	codePolicyExists:     ErrPolicyExists,
	codePolicyNotFound:   ErrPolicyNotFound,
}

// propose applies c on behalf of by. If a precondition fails it returns
// the error its code means (conditionErrs); a missing enclave is
// ErrEnclaveNotFound only to cluster admins, as everywhere. A code kms does
// not know means a bug: ErrInternal.
func (s *Service) propose(ctx context.Context, by Caller, c kv.Change) error {
	err := s.p.Propose(ctx, c)
	if err == nil {
		return nil
	}
	var ce *kv.ConditionError
	if errors.As(err, &ce) {
		if cerr, ok := conditionErrs[ce.Code]; ok {
			if errors.Is(cerr, ErrEnclaveNotFound) {
				return enclaveErr(by)
			}
			return cerr
		}
	}
	return stateErr("applying change", err)
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own record types are marshalled; they always encode.
		panic(fmt.Sprintf("kms: encoding %T: %v", v, err))
	}
	return b
}

func put(bucket, name string, v any) kv.Mutation {
	return kv.Mutation{Kind: kv.Put, Bucket: bucket, Name: name, Value: mustMarshal(v)}
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// list returns a page of the names of bucket. keep, if not nil, filters
// names (a user sees only the keys its policy lets it list); validate
// checks o.ContinueAt.
func (s *Service) list(ctx context.Context, bucket string, o ListOptions, validate func(string) error, keep func(string) bool) (Page, error) {
	limit := o.Limit
	switch {
	case limit < 0:
		return Page{}, Invalidf("invalid limit %d", limit)
	case limit == 0:
		limit = defaultPageSize
	case limit > maxPageSize:
		limit = maxPageSize
	}
	prefix := strings.TrimSuffix(o.Prefix, "*")
	if len(prefix) > maxPatternLength {
		return Page{}, Invalidf("invalid prefix: longer than %d characters", maxPatternLength)
	}
	if keep == nil {
		keep = func(string) bool { return true }
	}

	// Collect limit+1 names: the extra one is the next page's first.
	names := make([]string, 0, min(limit+1, 64))
	after := ""
	if o.ContinueAt != "" {
		if err := validate(o.ContinueAt); err != nil {
			return Page{}, err
		}
		// ContinueAt itself belongs to this page if it still exists;
		// List returns only the names strictly after it.
		if strings.HasPrefix(o.ContinueAt, prefix) {
			ok, err := s.exists(ctx, bucket, o.ContinueAt)
			if err != nil {
				return Page{}, err
			}
			if ok && keep(o.ContinueAt) {
				names = append(names, o.ContinueAt)
			}
		}
		after = o.ContinueAt
	}
	for len(names) <= limit {
		want := limit + 1 - len(names)
		batch, err := s.r.List(ctx, bucket, prefix, after, want)
		if err != nil {
			return Page{}, stateErr("listing "+bucket, err)
		}
		for _, n := range batch {
			if keep(n) {
				names = append(names, n)
			}
		}
		if len(batch) < want {
			break
		}
		after = batch[len(batch)-1]
	}
	if len(names) > limit {
		return Page{Names: names[:limit:limit], ContinueAt: names[limit]}, nil
	}
	return Page{Names: names}, nil
}
