package kms

import (
	"context"
	"fmt"
	"io"
)

// MaxBatchItems is the most items one Batch takes.
const MaxBatchItems = 1000

// BatchItem is one operation of a Batch. Action is one of
// ActionKeyGenerate, ActionKeyEncrypt, ActionKeyDecrypt, ActionKeyHMAC and
// ActionKeyRewrap; the fields it does not use must be empty.
type BatchItem struct {
	Action     Action
	Name       string // the key
	Plaintext  []byte // encrypt
	Ciphertext []byte // decrypt, rewrap
	Context    []byte // generate, encrypt, decrypt, rewrap
	Message    []byte // hmac
	Length     int    // generate: the data key length, 0 for 32
}

// BatchResult is the outcome of one BatchItem: Err, or the result of the
// operation as the single-item method returns it.
type BatchResult struct {
	Err        error
	Plaintext  []byte // generate, decrypt: the caller zeroes it
	Ciphertext []byte // generate, encrypt, rewrap
	HMAC       []byte // hmac
}

// maxBatchRings is the most key rings (or key read errors) one Batch holds
// at once. The rings a batch holds are outside the bound of the cache
// (cache.max_keys): they stay alive, with their AEAD and HKDF state, even
// when the cache evicted them, so a node running many batches of distinct
// keys at once would hold MaxBatchItems rings per batch without it.
const maxBatchRings = 64

// Batch does the items in order, in enclave, and returns one result per
// item. Each item is authorised on its own, exactly as the single-item
// method would be, and fails on its own: a bad, denied or failing item
// does not affect the others. More than MaxBatchItems items are an Invalid
// error for the whole batch.
//
// Within one batch the enclave and the caller's policy are read once, and
// so is each key ring, with one exception that bounds the memory a batch
// takes: a batch holds at most 64 rings at once, and lets go of a ring
// after the last item that names its key. When more than 64 keys are each
// named both before and after an item, the batch lets go of the ring it
// needs again the latest and reads it again when it does (from the cache,
// mostly); an item that reads a ring again sees the key as it is then, as a
// request of its own would, for instance the newest version after a
// rotation made during the batch.
func (s *Service) Batch(ctx context.Context, c Caller, enclave string, items []BatchItem) ([]BatchResult, error) {
	out, _, err := s.runBatch(ctx, c, enclave, items)
	return out, err
}

// runBatch is Batch; it also returns the most rings the batch held at once.
func (s *Service) runBatch(ctx context.Context, c Caller, enclave string, items []BatchItem) ([]BatchResult, int, error) {
	if len(items) > MaxBatchItems {
		return nil, 0, Invalidf("too many items in the batch: %d, at most %d", len(items), MaxBatchItems)
	}
	b := batch{s: s, ctx: ctx, rings: make(map[string]heldRing, min(len(items), maxBatchRings)), next: nextUses(items)}
	defer b.wipe()
	if err := ValidName(enclave); err != nil {
		b.enterErr = err
	} else {
		b.pol, b.admin, b.enterErr = s.enter(ctx, c, enclave)
	}
	b.enclave = enclave
	out := make([]BatchResult, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			out[i].Err = err
		} else {
			out[i] = b.do(i, it)
		}
		b.passed(i, it.Name)
	}
	return out, b.peak, nil
}

// nextUses returns, for each item, the index of the next item that names
// the same key, or len(items) if none does.
func nextUses(items []BatchItem) []int {
	next := make([]int, len(items))
	after := make(map[string]int, len(items))
	for i := len(items) - 1; i >= 0; i-- {
		j, ok := after[items[i].Name]
		if !ok {
			j = len(items)
		}
		next[i] = j
		after[items[i].Name] = i
	}
	return next
}

// heldRing is a key ring that a batch holds, or the error reading it, and
// the index of the next item that names the key.
type heldRing struct {
	entry *cacheEntry // released when the batch lets go of it
	err   error
	next  int
}

// batch is the state of one Batch: what it read once.
type batch struct {
	s        *Service
	ctx      context.Context
	enclave  string
	pol      *Policy
	admin    bool
	enterErr error
	rings    map[string]heldRing // at most maxBatchRings
	next     []int               // nextUses of the items
	peak     int                 // the most rings held at once
}

// let releases the ring of key name, if the batch holds it. The batch owns
// one reference to the cache entry: the last reference, the cache's or the
// batch's, zeroes the key material.
func (b *batch) let(name string) {
	if r, ok := b.rings[name]; ok {
		if r.entry != nil {
			r.entry.release()
		}
		delete(b.rings, name)
	}
}

// passed moves the batch past item i: it lets go of the ring of the item's
// key if no later item names the key.
func (b *batch) passed(i int, name string) {
	r, ok := b.rings[name]
	switch {
	case !ok:
	case b.next[i] == len(b.next):
		b.let(name)
	default:
		r.next = b.next[i]
		b.rings[name] = r
	}
}

func (b *batch) wipe() {
	for name := range b.rings {
		b.let(name)
	}
}

// authorize is authorizeKey with the enclave and policy read once.
func (b *batch) authorize(a Action, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if b.enterErr != nil {
		return b.enterErr
	}
	if !b.admin && !b.pol.Allows(a, name) {
		return ErrNotAllowed
	}
	return nil
}

// ring returns the ring of key name for item i. If the batch already holds
// maxBatchRings, it lets go of the one whose next item comes last, which is
// the choice that reads rings again the fewest times.
func (b *batch) ring(i int, name string) (*ringState, error) {
	r, ok := b.rings[name]
	if !ok {
		if len(b.rings) >= maxBatchRings {
			b.letLatest()
		}
		r.entry, r.err = b.s.ring(b.ctx, b.enclave, name)
		r.next = b.next[i]
		b.rings[name] = r
		b.peak = max(b.peak, len(b.rings))
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.entry.ring, nil
}

// letLatest lets go of the held ring whose next item comes last.
func (b *batch) letLatest() {
	latest, next := "", -1
	for name, r := range b.rings {
		if r.next > next {
			latest, next = name, r.next
		}
	}
	b.let(latest)
}

func (b *batch) do(i int, it BatchItem) BatchResult {
	switch it.Action {
	case ActionKeyGenerate, ActionKeyEncrypt, ActionKeyDecrypt, ActionKeyHMAC, ActionKeyRewrap:
	default:
		return BatchResult{Err: Invalidf("invalid batch operation %q: use generate, encrypt, decrypt, hmac or rewrap", truncate(string(it.Action), 40))}
	}
	if err := b.authorize(it.Action, it.Name); err != nil {
		return BatchResult{Err: err}
	}
	if it.Action == ActionKeyGenerate {
		// Checked before the key is read, as GenerateKey does.
		if it.Length == 0 {
			it.Length = DefaultDataKeyLen
		}
		if it.Length < MinDataKeyLen || it.Length > MaxDataKeyLen {
			return BatchResult{Err: Invalidf("invalid data key length %d: must be %d to %d bytes", it.Length, MinDataKeyLen, MaxDataKeyLen)}
		}
	}
	ring, err := b.ring(i, it.Name)
	if err != nil {
		return BatchResult{Err: err}
	}
	var r BatchResult
	switch it.Action {
	case ActionKeyGenerate:
		r.Plaintext = make([]byte, it.Length)
		if _, err := io.ReadFull(b.s.rand, r.Plaintext); err != nil {
			return BatchResult{Err: fmt.Errorf("creating data key: %w: %w", ErrInternal, err)}
		}
		r.Ciphertext, r.Err = b.s.sealWith(ring, r.Plaintext, it.Context)
		if r.Err != nil {
			clear(r.Plaintext)
			r.Plaintext = nil
		}
	case ActionKeyEncrypt:
		r.Ciphertext, r.Err = b.s.sealWith(ring, it.Plaintext, it.Context)
	case ActionKeyDecrypt:
		r.Plaintext, r.Err = open(ring, it.Ciphertext, it.Context)
	case ActionKeyHMAC:
		r.HMAC, r.Err = hmacWith(ring, it.Message)
	case ActionKeyRewrap:
		r.Ciphertext, r.Err = b.s.rewrapWith(ring, it.Ciphertext, it.Context)
	}
	return r
}
