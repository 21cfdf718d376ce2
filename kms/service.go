package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minkms/minkms/storage/kv"
)

// DefaultEnclave is the enclave that always exists: Init creates it, it
// cannot be deleted, and it is the home of the cluster admins.
const DefaultEnclave = "default"

// Options configure a Service.
type Options struct {
	// Admins are the cluster admins, named in the config file. They may do
	// everything in every enclave and cannot be created as identities.
	Admins []Identity
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Rand is the source of key material and nonces; crypto/rand if nil.
	Rand io.Reader
	// ClusterID returns the id of the cluster, which identity proofs name;
	// "" while it is not known, when every proof is refused. Nil: always "".
	ClusterID func() string
	// CacheMaxEntries bounds the cache of decoded key rings, identities,
	// enclaves and policies (see cache.go); 0 turns the cache off. With a
	// cache, whoever applies changes to the state must call Invalidate and
	// InvalidateAll.
	CacheMaxEntries int
}

// DefaultCacheMaxEntries is the cache size the server uses unless its
// config says otherwise (cache.max_keys).
const DefaultCacheMaxEntries = 10000

// Service is the key-management domain: it authorises every operation,
// builds the changes to the state and does the cryptography. Every node runs
// one over its local replica. Its only state is a cache of what it read
// from the replica, which the replica's applier keeps current (Invalidate).
type Service struct {
	r      Reader
	p      Proposer
	admins map[Identity]bool
	now    func() time.Time
	rand   io.Reader
	// envelopeFormat is the envelope format Encrypt writes; 0 means the
	// newest. Only tests and benchmarks set it (export_test).
	envelopeFormat int
	// clusterID: see Options.ClusterID.
	clusterID func() string
	cache     *cache                      // nil: off
	ready     func(context.Context) error // r's ReadyChecker, if it has one
}

// New returns a Service that reads the state from r and changes it through p.
func New(r Reader, p Proposer, opts Options) *Service {
	s := &Service{
		r:         r,
		p:         p,
		admins:    make(map[Identity]bool, len(opts.Admins)),
		now:       opts.Now,
		rand:      opts.Rand,
		clusterID: opts.ClusterID,
		cache:     newCache(opts.CacheMaxEntries),
	}
	for _, id := range opts.Admins {
		// A KES hex identity names the same key as its "h1:" form.
		if canon, err := ParseIdentity(string(id)); err == nil {
			id = canon
		}
		s.admins[id] = true
	}
	if rc, ok := r.(ReadyChecker); ok {
		s.ready = rc.Ready
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.clusterID == nil {
		s.clusterID = func() string { return "" }
	}
	return s
}

// Caller is who asks: the result of Service.Caller for an authenticated
// identity. Every operation takes one and is authorised against it.
type Caller struct {
	Identity     Identity
	Enclave      string // the enclave the identity belongs to ("default" for cluster admins)
	ClusterAdmin bool   // named in Options.Admins: everything, everywhere
	Admin        bool   // an enclave admin: everything inside Enclave
	Policy       string // for users: the policy in Enclave that says what they may do
}

// ListOptions select a page of names.
type ListOptions struct {
	Prefix     string // only names that start with Prefix; a trailing '*' is ignored
	ContinueAt string // the first name of the page: Page.ContinueAt of the previous one
	Limit      int    // at most this many names; 0 means 100, more than 1000 means 1000
}

// Page is one page of names in ascending order.
type Page struct {
	Names      []string
	ContinueAt string // the first name of the next page; "" if this is the last page
}

// Init creates the default enclave if it does not exist yet. It is
// idempotent and safe to call from every node at the same time: the
// MustNotExist precondition lets one proposal win, and the others find it
// done.
func (s *Service) Init(ctx context.Context) error {
	if s.Initialised(ctx) == nil {
		return nil
	}
	err := s.propose(ctx, Caller{}, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustNotExist, Bucket: enclavesBucket, Name: DefaultEnclave, Code: codeEnclaveExists}},
		Apply:   []kv.Mutation{put(enclavesBucket, DefaultEnclave, enclaveRecord{CreatedAt: s.now().UTC()})},
	})
	if errors.Is(err, ErrEnclaveExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the default enclave: %w", err)
	}
	return nil
}

// Initialised returns nil once the default enclave exists in the state
// this Service reads, an error saying why not otherwise.
func (s *Service) Initialised(ctx context.Context) error {
	ok, err := s.exists(ctx, enclavesBucket, DefaultEnclave)
	if err != nil {
		return err
	}
	if !ok {
		return &Error{Unavailable, "the default enclave does not exist yet"}
	}
	return nil
}

// Caller returns the Caller for id. Cluster admins are those of
// Options.Admins, with "default" as their enclave; anyone else must be a
// stored identity. For an unknown identity it returns ErrNotAllowed.
func (s *Service) Caller(ctx context.Context, id Identity) (Caller, error) {
	if id == "" {
		return Caller{}, ErrNoIdentity
	}
	if s.admins[id] {
		return Caller{Identity: id, Enclave: DefaultEnclave, ClusterAdmin: true, Admin: true}, nil
	}
	// Only valid identities are cached: a hit needs no parsing.
	e, err := s.cached(ctx, cacheKey{kind: kindCaller, name: string(id)}, func() (*cacheEntry, error) {
		if _, err := ParseIdentity(string(id)); err != nil {
			return nil, ErrNotAllowed
		}
		var idx indexRecord
		ie, err := s.getEntry(ctx, indexBucket, string(id), &idx, ErrNotAllowed)
		if err != nil {
			return nil, err
		}
		var rec identityRecord
		re, err := s.getEntry(ctx, identitiesBucket(idx.Enclave), string(id), &rec, ErrNotAllowed)
		if err != nil {
			// A stale index entry (its enclave was deleted meanwhile)
			// names no one.
			return nil, err
		}
		ce := newEntry(min(ie.Index, re.Index))
		ce.caller = Caller{Identity: id, Enclave: idx.Enclave, Admin: rec.Admin, Policy: rec.Policy}
		return ce, nil
	})
	if err != nil {
		return Caller{}, err
	}
	defer e.release()
	return e.caller, nil
}
