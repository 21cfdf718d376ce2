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

// Batch does the items in order, in enclave, and returns one result per
// item. Each item is authorised on its own, exactly as the single-item
// method would be, and fails on its own: a bad, denied or failing item
// does not affect the others. Within one batch the enclave, the caller's
// policy and each key ring are read once. More than MaxBatchItems items
// are an Invalid error for the whole batch.
func (s *Service) Batch(ctx context.Context, c Caller, enclave string, items []BatchItem) ([]BatchResult, error) {
	if len(items) > MaxBatchItems {
		return nil, Invalidf("too many items in the batch: %d, at most %d", len(items), MaxBatchItems)
	}
	b := batch{s: s, ctx: ctx, rings: map[string]ringOrErr{}}
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
			continue
		}
		out[i] = b.do(it)
	}
	return out, nil
}

type ringOrErr struct {
	entry *cacheEntry // released when the batch ends
	err   error
}

// batch is the state of one Batch: what it read once.
type batch struct {
	s        *Service
	ctx      context.Context
	enclave  string
	pol      *Policy
	admin    bool
	enterErr error
	rings    map[string]ringOrErr
}

func (b *batch) wipe() {
	for _, r := range b.rings {
		if r.entry != nil {
			r.entry.release()
		}
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

func (b *batch) ring(name string) (*ringState, error) {
	if r, ok := b.rings[name]; ok {
		if r.err != nil {
			return nil, r.err
		}
		return r.entry.ring, nil
	}
	e, err := b.s.ring(b.ctx, b.enclave, name)
	b.rings[name] = ringOrErr{e, err}
	if err != nil {
		return nil, err
	}
	return e.ring, nil
}

func (b *batch) do(it BatchItem) BatchResult {
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
	ring, err := b.ring(it.Name)
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
