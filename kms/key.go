package kms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/minkms/minkms/storage/kv"
)

// KeyInfo describes a key. Algorithm, CreatedAt and CreatedBy are those of
// the newest version, the one that encrypts.
type KeyInfo struct {
	Name      string
	Algorithm Algorithm
	CreatedAt time.Time
	CreatedBy Identity
	Version   int          // the newest version
	Versions  []KeyVersion // oldest first
}

// KeyVersion describes one version of a key.
type KeyVersion struct {
	Version   int
	Algorithm Algorithm
	CreatedAt time.Time
	CreatedBy Identity
}

// Limits of the data key length of GenerateKey, in bytes.
const (
	DefaultDataKeyLen = 32
	MinDataKeyLen     = 16
	MaxDataKeyLen     = 1024
)

// rotateAttempts is how often CreateIdentity retries when the identity
// index changed between reading and proposing.
const rotateAttempts = 5

// CreateKey creates the key name in enclave with fresh key material as
// version 1. If the key exists it returns ErrKeyExists; of two concurrent
// creates, on any nodes, exactly one wins.
func (s *Service) CreateKey(ctx context.Context, c Caller, enclave, name string, alg Algorithm) (KeyInfo, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyCreate, name); err != nil {
		return KeyInfo{}, err
	}
	key := make([]byte, KeySize)
	defer clear(key)
	if _, err := io.ReadFull(s.rand, key); err != nil {
		return KeyInfo{}, fmt.Errorf("creating key material: %w: %w", ErrInternal, err)
	}
	return s.createKey(ctx, c, enclave, name, alg, key)
}

// ImportKey creates the key name in enclave with the given 32 bytes of key
// material as version 1. If the key exists it returns ErrKeyExists. The
// caller keeps key; ImportKey does not change it.
func (s *Service) ImportKey(ctx context.Context, c Caller, enclave, name string, alg Algorithm, key []byte) (KeyInfo, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyImport, name); err != nil {
		return KeyInfo{}, err
	}
	if len(key) != KeySize {
		return KeyInfo{}, Invalidf("invalid key: must be %d bytes, not %d", KeySize, len(key))
	}
	return s.createKey(ctx, c, enclave, name, alg, key)
}

func (s *Service) createKey(ctx context.Context, c Caller, enclave, name string, alg Algorithm, key []byte) (KeyInfo, error) {
	if _, ok := algorithmIDs[alg]; !ok {
		return KeyInfo{}, Invalidf("invalid algorithm %q: use AES256 or ChaCha20", truncate(string(alg), 40))
	}
	ring := &keyRing{
		Versions: []keyVersion{{Version: 1, Algorithm: alg, Key: key, CreatedAt: s.now().UTC(), CreatedBy: c.Identity}},
		Next:     2,
	}
	m := put(keysBucket(enclave), name, ring)
	defer clear(m.Value) // the key material, base64 in JSON
	err := s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{
			{Kind: kv.MustExist, Bucket: enclavesBucket, Name: enclave, Code: codeEnclaveNotFound},
			{Kind: kv.MustNotExist, Bucket: keysBucket(enclave), Name: name, Code: codeKeyExists},
		},
		Apply: []kv.Mutation{m},
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return ring.info(name), nil
}

// readRing returns the key ring and its revision. The caller wipes it. For
// a missing key it returns ErrKeyNotFound.
func (s *Service) readRing(ctx context.Context, enclave, name string) (*keyRing, uint64, error) {
	e, err := s.r.Get(ctx, keysBucket(enclave), name)
	if errNotExist(err) {
		return nil, 0, ErrKeyNotFound
	}
	if err != nil {
		return nil, 0, stateErr("reading key", err)
	}
	ring, err := decodeKeyRing(e.Value)
	clear(e.Value) // the key material, base64 in JSON
	if err != nil {
		return nil, 0, stateErr("reading key", err)
	}
	return ring, e.Revision, nil
}

// ring returns the key ring as the cache holds it, with a reference the
// caller releases. For a missing key it returns ErrKeyNotFound.
func (s *Service) ring(ctx context.Context, enclave, name string) (*cacheEntry, error) {
	return s.cached(ctx, cacheKey{kind: kindRing, enclave: enclave, name: name}, func() (*cacheEntry, error) {
		e, err := s.r.Get(ctx, keysBucket(enclave), name)
		if errNotExist(err) {
			return nil, ErrKeyNotFound
		}
		if err != nil {
			return nil, stateErr("reading key", err)
		}
		ring, err := decodeKeyRing(e.Value)
		clear(e.Value) // the key material, base64 in JSON
		if err != nil {
			return nil, stateErr("reading key", err)
		}
		ce := newEntry(e.Index)
		ce.ring = newRingState(ring, e.Revision)
		return ce, nil
	})
}

// updateRing applies edit to the key ring and writes it back if the ring
// is still at the revision it was read at. If not, it reads the ring again
// and retries after a jittered backoff, for up to updateAttempts attempts
// and never past the context's deadline; then it returns ErrKeyChanged.
// edit returns the mutations to apply.
func (s *Service) updateRing(ctx context.Context, c Caller, enclave, name string, edit func(*keyRing) ([]kv.Mutation, error)) (KeyInfo, error) {
	for attempt := 0; ; attempt++ {
		ring, rev, err := s.readRing(ctx, enclave, name)
		if err != nil {
			return KeyInfo{}, err
		}
		muts, err := edit(ring)
		if err != nil {
			ring.wipe()
			return KeyInfo{}, err
		}
		info := ring.info(name)
		ring.wipe()
		err = s.propose(ctx, c, kv.Change{
			Require: []kv.Condition{{Kind: kv.AtRevision, Bucket: keysBucket(enclave), Name: name, Revision: rev, Code: codeKeyChanged}},
			Apply:   muts,
		})
		for _, m := range muts {
			clear(m.Value) // the key ring with its material, base64 in JSON
		}
		if !errors.Is(err, errConflict) {
			return info, err
		}
		if attempt+1 >= updateAttempts {
			return KeyInfo{}, fmt.Errorf("updating key %q: %w (%d attempts)", name, ErrKeyChanged, attempt+1)
		}
		if err := backoff(ctx, attempt); err != nil {
			return KeyInfo{}, fmt.Errorf("updating key %q: %w (%d attempts)", name, err, attempt+1)
		}
	}
}

// errConflict marks a key ring whose revision moved under an update.
var errConflict = errors.New("conflict")

// The retries of an update whose key ring moved. Each waits a random time
// between half and all of a bound that doubles from updateBackoffMin up to
// updateBackoffMax, so that the updates that lost do not meet again at
// once; in all about 2s without a deadline.
const (
	updateAttempts   = 32
	updateBackoffMin = 2 * time.Millisecond
	updateBackoffMax = 64 * time.Millisecond
)

// backoff waits before retry attempt+1. It returns ErrKeyChanged at once
// if the context's deadline leaves no time for the wait and another
// attempt (so that the caller learns of the conflict, not of a timeout),
// and the context's error if it ends during the wait.
func backoff(ctx context.Context, attempt int) error {
	bound := updateBackoffMax
	if attempt < 8 {
		bound = min(updateBackoffMin<<attempt, updateBackoffMax)
	}
	d := bound/2 + mrand.N(bound/2+1)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < 2*d {
		return ErrKeyChanged
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RotateKey adds a new version with fresh key material and the algorithm of
// the newest one. The new version encrypts from now on; the older ones keep
// decrypting. It returns the key as it is after the rotation.
func (s *Service) RotateKey(ctx context.Context, c Caller, enclave, name string) (KeyInfo, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyRotate, name); err != nil {
		return KeyInfo{}, err
	}
	return s.updateRing(ctx, c, enclave, name, func(r *keyRing) ([]kv.Mutation, error) {
		next := max(r.Next, r.newest().Version+1)
		if next > maxKeyVersion {
			return nil, Invalidf("key %q has too many versions", name)
		}
		key := make([]byte, KeySize)
		if _, err := io.ReadFull(s.rand, key); err != nil {
			return nil, fmt.Errorf("creating key material: %w: %w", ErrInternal, err)
		}
		r.Versions = append(r.Versions, keyVersion{
			Version: next, Algorithm: r.newest().Algorithm, Key: key,
			CreatedAt: s.now().UTC(), CreatedBy: c.Identity,
		})
		r.Next = next + 1
		return []kv.Mutation{put(keysBucket(enclave), name, r)}, nil
	})
}

// DescribeKey returns the key and its versions. It reveals no key material.
func (s *Service) DescribeKey(ctx context.Context, c Caller, enclave, name string) (KeyInfo, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyDescribe, name); err != nil {
		return KeyInfo{}, err
	}
	e, err := s.ring(ctx, enclave, name)
	if err != nil {
		return KeyInfo{}, err
	}
	defer e.release()
	return e.ring.ring.info(name), nil
}

// ListKeys returns a page of the key names of enclave. A user sees only the
// names its policy allows it to list (key:list), and needs at least one
// such rule to list at all.
func (s *Service) ListKeys(ctx context.Context, c Caller, enclave string, o ListOptions) (Page, error) {
	keep, err := s.authorizeKeyList(ctx, c, enclave)
	if err != nil {
		return Page{}, err
	}
	return s.list(ctx, keysBucket(enclave), o, ValidName, keep)
}

// DeleteKey deletes the key with all its versions. Its ciphertexts can no
// longer be decrypted. If the key does not exist it returns ErrKeyNotFound.
func (s *Service) DeleteKey(ctx context.Context, c Caller, enclave, name string) error {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyDelete, name); err != nil {
		return err
	}
	return s.propose(ctx, c, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustExist, Bucket: keysBucket(enclave), Name: name, Code: codeKeyNotFound}},
		Apply:   []kv.Mutation{{Kind: kv.Delete, Bucket: keysBucket(enclave), Name: name}},
	})
}

// DeleteKeyVersion deletes one version of a key (it needs key:delete). The
// ciphertexts of that version can no longer be decrypted; if it was the
// newest, the newest remaining version encrypts from now on, and its
// number is never given again. The only remaining version cannot be
// deleted: that is an Invalid error that says to delete the key. A missing
// version is ErrKeyVersionNotFound.
func (s *Service) DeleteKeyVersion(ctx context.Context, c Caller, enclave, name string, version int) error {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyDelete, name); err != nil {
		return err
	}
	_, err := s.updateRing(ctx, c, enclave, name, func(r *keyRing) ([]kv.Mutation, error) {
		i := -1
		for j, v := range r.Versions {
			if v.Version == version {
				i = j
			}
		}
		if i < 0 {
			return nil, ErrKeyVersionNotFound
		}
		if len(r.Versions) == 1 {
			return nil, Invalidf("cannot delete the only version of key %q: delete the key", name)
		}
		r.Next = max(r.Next, r.newest().Version+1)
		clear(r.Versions[i].Key)
		r.Versions = append(r.Versions[:i], r.Versions[i+1:]...)
		return []kv.Mutation{put(keysBucket(enclave), name, r)}, nil
	})
	return err
}

// Encrypt encrypts plaintext under the newest version of the key, bound to
// context: Decrypt needs the same context. The result is an envelope of
// format 2 (see envelope.go): it names the version, so it decrypts after
// rotations, and it carries the salt of its own AEAD key.
// Plaintexts longer than MaxPlaintext are an Invalid error.
func (s *Service) Encrypt(ctx context.Context, c Caller, enclave, name string, plaintext, context []byte) ([]byte, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyEncrypt, name); err != nil {
		return nil, err
	}
	return s.encrypt(ctx, enclave, name, plaintext, context)
}

func (s *Service) encrypt(ctx context.Context, enclave, name string, plaintext, context []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, Invalidf("plaintext too large: at most %d bytes", MaxPlaintext)
	}
	e, err := s.ring(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	defer e.release()
	format := s.envelopeFormat
	if format == 0 {
		format = envelopeFormat
	}
	ct, err := seal(e.ring.newest(), format, s.rand, plaintext, context)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w: %w", ErrInternal, err)
	}
	return ct, nil
}

// Decrypt decrypts a ciphertext of Encrypt with the version it names.
// After the caller is authorised and the key found, every failure —
// malformed or tampered ciphertext, unknown or deleted version, another
// key, another context — is exactly ErrDecrypt.
func (s *Service) Decrypt(ctx context.Context, c Caller, enclave, name string, ciphertext, context []byte) ([]byte, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyDecrypt, name); err != nil {
		return nil, err
	}
	e, err := s.ring(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	defer e.release()
	return open(e.ring, ciphertext, context)
}

// GenerateKey returns a fresh data key of length bytes (0 means 32; 16 to
// 1024 are allowed, else Invalid), in plaintext and encrypted under the key
// as Encrypt would, bound to context.
func (s *Service) GenerateKey(ctx context.Context, c Caller, enclave, name string, context []byte, length int) (plaintext, ciphertext []byte, err error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyGenerate, name); err != nil {
		return nil, nil, err
	}
	if length == 0 {
		length = DefaultDataKeyLen
	}
	if length < MinDataKeyLen || length > MaxDataKeyLen {
		return nil, nil, Invalidf("invalid data key length %d: must be %d to %d bytes", length, MinDataKeyLen, MaxDataKeyLen)
	}
	plaintext = make([]byte, length)
	if _, err := io.ReadFull(s.rand, plaintext); err != nil {
		return nil, nil, fmt.Errorf("creating data key: %w: %w", ErrInternal, err)
	}
	ciphertext, err = s.encrypt(ctx, enclave, name, plaintext, context)
	if err != nil {
		clear(plaintext)
		return nil, nil, err
	}
	return plaintext, ciphertext, nil
}

// HMAC returns the HMAC-SHA256 of message under the newest version of the
// key. The HMAC key is a subkey of the version's material,
// HKDF-SHA256(material, salt none, info "minkms/v1/hmac", 32 bytes), never
// the material itself nor the AEAD subkey. A rotation changes the HMAC.
func (s *Service) HMAC(ctx context.Context, c Caller, enclave, name string, message []byte) ([]byte, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyHMAC, name); err != nil {
		return nil, err
	}
	if len(message) > maxCiphertextSize {
		return nil, Invalidf("message too large: at most %d bytes", maxCiphertextSize)
	}
	e, err := s.ring(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	defer e.release()
	sub, err := e.ring.newest().hmacSubkey()
	if err != nil {
		return nil, fmt.Errorf("deriving the HMAC subkey: %w: %w", ErrInternal, err)
	}
	m := hmac.New(sha256.New, sub)
	m.Write(message)
	return m.Sum(nil), nil
}

const hmacInfo = "minkms/v1/hmac"
