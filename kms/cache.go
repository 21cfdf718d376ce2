package kms

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minkms/minkms/storage/kv"
)

// The cache of decoded state: key rings with their derived AEAD and HMAC
// state, resolved callers, enclave existence and policies. It is what makes
// the hot path (Caller, then Encrypt, Decrypt, GenerateKey or HMAC) free of
// state reads, JSON decoding and key derivation.
//
// It is never stale after a change returned on this node: the state's
// applier (the raft FSM) calls Invalidate with the mutations of every
// change it applied, and InvalidateAll after a snapshot restore, before the
// change's proposer is answered. Two things keep a reader that read the
// state before an invalidation from inserting what it read after it:
//
//   - every entry carries the applied index of the read transaction it came
//     from (kv.Entry.Index, the smallest one if it took several reads), and
//     an insert is refused unless that index is at least the index of the
//     newest invalidation (the watermark), and the cache was not cleared
//     since the read started (the epoch);
//   - a cold key is fetched once (singleflight), but a request joins a fetch
//     only while no invalidation touched the key since the fetch started:
//     an invalidation drops the key's fetch, and later requests start their
//     own.
//
// Only what exists is cached: a missing key, policy or identity is read
// again on every request. The size is bounded by maxEntries over all kinds;
// when full, an arbitrary entry is evicted. An entry's key material (the
// ring's versions, their HKDF pseudo-random keys and HMAC subkeys) is zeroed
// when the entry is evicted or invalidated and no request still uses it, or
// at Close.

// cacheKind says what a cache entry holds.
type cacheKind uint8

const (
	kindRing    cacheKind = iota + 1 // enclave, name: the key ring
	kindEnclave                      // enclave: the enclave exists
	kindPolicy                       // enclave, name: the policy
	kindCaller                       // name: the identity's Caller
)

// cacheKey names an entry. It is a struct of strings, so a lookup does not
// allocate.
type cacheKey struct {
	kind    cacheKind
	enclave string
	name    string
}

// cacheEntry is an immutable value of the cache, shared by the requests
// that use it. For a key ring, refs counts the cache's own reference and
// each request's, and the last release wipes the key material. The other
// kinds hold nothing to wipe, so they are not counted: taking and releasing
// one of them is free (two atomic operations less on every lookup of an
// enclave, a policy or a caller).
type cacheEntry struct {
	refs  atomic.Int32 // meaningful for key rings only
	index uint64       // the applied index the value was read at (the smallest, for several reads)

	ring   *ringState // kindRing
	policy *Policy    // kindPolicy
	caller Caller     // kindCaller
}

func newEntry(index uint64) *cacheEntry {
	e := &cacheEntry{index: index}
	e.refs.Store(1)
	return e
}

// acquire takes a reference for a request.
func (e *cacheEntry) acquire() {
	if e.ring != nil {
		e.refs.Add(1)
	}
}

// release drops one reference; the last one wipes the key material.
func (e *cacheEntry) release() {
	if e.ring != nil && e.refs.Add(-1) == 0 {
		e.ring.wipe()
	}
}

// flight is a fetch of a cold key that other requests may wait for.
type flight struct {
	done    chan struct{}
	waiters int32 // requests waiting; each gets a reference to entry
	entry   *cacheEntry
	err     error
}

// CacheStats are the counters of the cache since the Service was made.
type CacheStats struct {
	Entries       int    // entries now
	MaxEntries    int    // the bound; 0: the cache is off
	Hits          uint64 // lookups answered from the cache (or by another request's fetch)
	Misses        uint64 // lookups that read the state
	Evictions     uint64 // entries dropped to make room
	Invalidations uint64 // entries dropped because the state changed (or was restored)
}

type cache struct {
	max int

	mu        sync.RWMutex
	entries   map[cacheKey]*cacheEntry
	flights   map[cacheKey]*flight
	watermark uint64 // the index of the newest invalidation
	epoch     uint64 // counts the times the cache was cleared
	closed    bool

	hits, misses, evictions, invalidations atomic.Uint64
}

func newCache(max int) *cache {
	if max <= 0 {
		return nil
	}
	return &cache{
		max:     max,
		entries: make(map[cacheKey]*cacheEntry, min(max, 1024)),
		flights: make(map[cacheKey]*flight),
	}
}

// get returns the entry for k, with a reference the caller releases. On a
// miss it calls load, once for all requests that want k at the same time
// (see the comment at the top for when they may share it). load returns
// an entry with one reference, or an error, which is not cached. A nil cache
// calls load every time.
func (c *cache) get(k cacheKey, load func() (*cacheEntry, error)) (*cacheEntry, error) {
	if c == nil {
		return load()
	}
	c.mu.RLock()
	if e, ok := c.entries[k]; ok {
		e.acquire()
		c.mu.RUnlock()
		c.hits.Add(1)
		return e, nil
	}
	c.mu.RUnlock()

	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		e.acquire()
		c.mu.Unlock()
		c.hits.Add(1)
		return e, nil
	}
	if f, ok := c.flights[k]; ok {
		f.waiters++
		c.mu.Unlock()
		<-f.done
		if f.err != nil {
			// Not cached, and maybe the fetcher's own (its context
			// ended): read for ourselves.
			c.misses.Add(1)
			return load()
		}
		c.hits.Add(1)
		return f.entry, nil
	}
	f := &flight{done: make(chan struct{})}
	c.flights[k] = f
	epoch := c.epoch
	c.mu.Unlock()
	c.misses.Add(1)

	e, err := load()

	c.mu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	if err == nil {
		// One reference for each waiter; they joined under the lock, and
		// no one joins f any more.
		e.refs.Add(f.waiters)
		if !c.closed && epoch == c.epoch && e.index >= c.watermark {
			if _, ok := c.entries[k]; !ok {
				c.evictOne()
				e.refs.Add(1) // the cache's
				c.entries[k] = e
			}
		}
	}
	f.entry, f.err = e, err
	c.mu.Unlock()
	close(f.done)
	return e, err
}

// evictOne makes room for one entry. c.mu is held.
func (c *cache) evictOne() {
	for k, e := range c.entries {
		if len(c.entries) < c.max {
			return
		}
		delete(c.entries, k)
		e.release()
		c.evictions.Add(1)
	}
}

// drop removes k. c.mu is held.
func (c *cache) drop(k cacheKey) {
	delete(c.flights, k)
	if e, ok := c.entries[k]; ok {
		delete(c.entries, k)
		e.release()
		c.invalidations.Add(1)
	}
}

// clear removes every entry and fetch. c.mu is held.
func (c *cache) clear() {
	for k, e := range c.entries {
		delete(c.entries, k)
		e.release()
		c.invalidations.Add(1)
	}
	clear(c.flights)
	c.epoch++
}

// invalidate drops what the mutations, applied at index, change.
func (c *cache) invalidate(index uint64, changed []kv.Mutation) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watermark = max(c.watermark, index)
	for _, m := range changed {
		if m.Kind == kv.DeleteBucket && (m.Bucket == enclavesBucket || strings.HasPrefix(m.Bucket, enclavesBucket+"/") || m.Bucket == indexBucket) {
			// Deleting an enclave's buckets: rare, so drop everything
			// rather than find what the bucket held.
			c.clear()
			return
		}
		if k, ok := keyOf(m.Bucket, m.Name); ok {
			c.drop(k)
		}
	}
}

// invalidateAll clears the cache: the state was replaced, now at index.
func (c *cache) invalidateAll(index uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watermark = index
	c.clear()
}

// close wipes every entry; nothing is cached from now on.
func (c *cache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.clear()
}

// keyOf returns the cache entry that the state entry bucket/name feeds, if
// any (see the layout in store.go).
func keyOf(bucket, name string) (cacheKey, bool) {
	switch {
	case bucket == indexBucket:
		return cacheKey{kind: kindCaller, name: name}, true
	case bucket == enclavesBucket:
		return cacheKey{kind: kindEnclave, enclave: name}, true
	}
	rest, ok := strings.CutPrefix(bucket, enclavesBucket+"/")
	if !ok {
		return cacheKey{}, false
	}
	enclave, sub, ok := strings.Cut(rest, "/")
	if !ok {
		return cacheKey{}, false
	}
	switch sub {
	case "keys":
		return cacheKey{kind: kindRing, enclave: enclave, name: name}, true
	case "policies":
		return cacheKey{kind: kindPolicy, enclave: enclave, name: name}, true
	case "identities":
		return cacheKey{kind: kindCaller, name: name}, true
	}
	return cacheKey{}, false
}

func (c *cache) stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	return CacheStats{
		Entries:       n,
		MaxEntries:    c.max,
		Hits:          c.hits.Load(),
		Misses:        c.misses.Load(),
		Evictions:     c.evictions.Load(),
		Invalidations: c.invalidations.Load(),
	}
}

// cached looks k up in the cache (load on a miss), once the Reader says
// the state may be served (ReadyChecker): an answer from memory is subject
// to the same freshness rule as a read.
func (s *Service) cached(ctx context.Context, k cacheKey, load func() (*cacheEntry, error)) (*cacheEntry, error) {
	if s.cache != nil && s.ready != nil {
		if err := s.ready(ctx); err != nil {
			return nil, stateErr("reading state", err)
		}
	}
	return s.cache.get(k, load)
}

// Invalidate tells the Service that the mutations changed were applied to
// the state at index. The state's applier calls it after every applied
// change and before the change's proposer learns of it, so that no request
// that starts afterwards on this node sees what the change replaced. It
// keeps no reference to changed and ignores the values.
func (s *Service) Invalidate(index uint64, changed []kv.Mutation) { s.cache.invalidate(index, changed) }

// InvalidateAll tells the Service that the state was replaced (a snapshot
// restore) and is now at index: it forgets everything it cached.
func (s *Service) InvalidateAll(index uint64) { s.cache.invalidateAll(index) }

// Stats returns the cache's counters.
func (s *Service) Stats() CacheStats { return s.cache.stats() }

// Close zeroes the key material the Service holds in its cache and stops
// caching. Requests still running finish with what they hold.
func (s *Service) Close() { s.cache.close() }
