package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// ringState is a decoded key ring with what each version derives, made
// once and shared by the requests that use the ring (through the cache).
// It is immutable but for the lazily made derivations, each behind a
// sync.Once.
type ringState struct {
	ring     *keyRing
	rev      uint64
	versions []*versionState // parallel to ring.Versions
}

func newRingState(ring *keyRing, rev uint64) *ringState {
	rs := &ringState{ring: ring, rev: rev, versions: make([]*versionState, len(ring.Versions))}
	for i := range ring.Versions {
		v := &ring.Versions[i]
		rs.versions[i] = &versionState{v: v, algID: algorithmIDs[v.Algorithm]}
	}
	return rs
}

// newest returns the version that encrypts.
func (rs *ringState) newest() *versionState { return rs.versions[len(rs.versions)-1] }

// version returns version n, if the ring still has it.
func (rs *ringState) version(n int) (*versionState, bool) {
	for _, v := range rs.versions {
		if v.v.Version == n {
			return v, true
		}
	}
	return nil, false
}

// wipe zeroes the material of every version and what was derived from it
// that can be zeroed. Nobody may use rs afterwards.
func (rs *ringState) wipe() {
	for _, v := range rs.versions {
		clear(v.prk)
		clear(v.hmacKey)
	}
	rs.ring.wipe()
}

// versionState is one key version with its derivations:
//
//   - aead1: the AEAD of format 1 (one key per version);
//   - prk: the HKDF-Extract of the material, from which format 2 expands
//     each message's key; macs: HMAC-SHA256 keyed by prk, pooled, so that an
//     expansion is two SHA-256 blocks and no allocation;
//   - hmacKey: the subkey of Service.HMAC.
//
// The cipher and HMAC objects hold key schedules and hash states that Go
// offers no way to zero; they become garbage with the state.
type versionState struct {
	v     *keyVersion
	algID byte // the envelope's algorithm byte of v.Algorithm

	once1 sync.Once
	aead1 cipher.AEAD
	err1  error

	once2  sync.Once
	prk    []byte
	info2  []byte // "minkms/v2/aead/" + algorithm: the info before the salt
	macs   sync.Pool
	errPRK error

	onceH   sync.Once
	hmacKey []byte
	errH    error
}

// expander is a pooled HMAC keyed by a version's PRK, with room for its
// output.
type expander struct {
	mac hash.Hash
	out [sha256.Size]byte
}

var hkdfCounter1 = []byte{1}

// aead returns the AEAD for a message of format with salt (none in format
// 1) under this version.
func (vs *versionState) aead(format int, salt []byte) (cipher.AEAD, error) {
	switch format {
	case format1:
		vs.once1.Do(func() { vs.aead1, vs.err1 = newAEAD(format1, vs.v.Algorithm, vs.v.Key, nil) })
		return vs.aead1, vs.err1
	case format2:
	default:
		return nil, fmt.Errorf("unknown envelope format %d", format)
	}
	if len(salt) != saltSize {
		return nil, fmt.Errorf("salt of %d bytes, want %d", len(salt), saltSize)
	}
	vs.once2.Do(func() {
		vs.prk, vs.errPRK = hkdf.Extract(sha256.New, vs.v.Key, nil)
		vs.info2 = []byte("minkms/v2/aead/" + string(vs.v.Algorithm))
		prk := vs.prk
		vs.macs.New = func() any { return &expander{mac: hmac.New(sha256.New, prk)} }
	})
	if vs.errPRK != nil {
		return nil, fmt.Errorf("deriving the %s key: %w", vs.v.Algorithm, vs.errPRK)
	}
	// HKDF-Expand for one block: HMAC(prk, info || 0x01), info being
	// "minkms/v2/aead/" + algorithm + salt, as aeadKey computes it.
	x := vs.macs.Get().(*expander)
	x.mac.Reset()
	x.mac.Write(vs.info2)
	x.mac.Write(salt)
	x.mac.Write(hkdfCounter1)
	key := x.mac.Sum(x.out[:0])
	a, err := aeadOf(vs.v.Algorithm, key)
	clear(x.out[:])
	vs.macs.Put(x)
	return a, err
}

// hmacSubkey returns the subkey of Service.HMAC; it belongs to vs.
func (vs *versionState) hmacSubkey() ([]byte, error) {
	vs.onceH.Do(func() { vs.hmacKey, vs.errH = hkdf.Key(sha256.New, vs.v.Key, nil, hmacInfo, 32) })
	return vs.hmacKey, vs.errH
}

// aeadOf returns the AEAD of alg under key. The AEAD keeps its own copy of
// the key (schedule), which cannot be zeroed.
//
// For AES-256-GCM it allocates twice, 512 and 768 bytes, and format 2 calls
// it for every message: crypto/cipher offers no way to re-key an AEAD, and
// NewGCM copies the key schedule out of the Block, which is garbage at
// once. These two allocations are most of what format 2 costs over
// format 1 (BenchmarkEncrypt).
func aeadOf(alg Algorithm, key []byte) (cipher.AEAD, error) {
	switch alg {
	case AES256:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("creating AES-256: %w", err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("creating AES-256-GCM: %w", err)
		}
		return gcm, nil
	case ChaCha20:
		c, err := chacha20poly1305.New(key)
		if err != nil {
			return nil, fmt.Errorf("creating ChaCha20-Poly1305: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}
