package kms

import (
	"golang.org/x/crypto/chacha20poly1305"

	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// A ciphertext of Encrypt is an envelope that says how to open it:
//
//	offset  size  field
//	0       2     magic "mk" (0x6d 0x6b)
//	2       1     format version, 1
//	3       1     algorithm: 1 AES-256-GCM, 2 ChaCha20-Poly1305
//	4       4     key version, uint32 big-endian, ≥ 1
//	8       12    nonce, random
//	20      n+16  AEAD output: the sealed plaintext and the 16-byte tag
//
// The AEAD's associated data is the 8-byte header (offsets 0 to 8) followed
// by the caller's context. The header has a fixed length, so the pair
// (header, context) is unambiguous; binding the header means that neither
// the algorithm nor the key version can be changed without the tag failing.
//
// The AEAD key is not the key version's material itself but a subkey
// derived from it: HKDF-SHA256(material, salt none, info "minkms/v1/aead/"
// + the algorithm's name, 32 bytes). HMAC uses another subkey of the same
// material (info "minkms/v1/hmac", see Service.HMAC), so no key is ever used
// for two purposes.

const (
	envelopeV1        = 1
	headerSize        = 8
	nonceSize         = 12
	tagSize           = 16
	envelopeOverhead  = headerSize + nonceSize + tagSize
	maxCiphertextSize = 1 << 20
	// MaxPlaintext is the largest plaintext Encrypt accepts, so that the
	// ciphertext fits in 1 MiB.
	MaxPlaintext = maxCiphertextSize - envelopeOverhead
)

var envelopeMagic = [2]byte{'m', 'k'}

// algorithmIDs are the algorithm bytes of the envelope.
var algorithmIDs = map[Algorithm]byte{AES256: 1, ChaCha20: 2}

// Ciphertext is a parsed envelope.
type Ciphertext struct {
	Algorithm  Algorithm
	KeyVersion int
	Nonce      []byte // 12 bytes
	Sealed     []byte // the AEAD output: sealed plaintext and tag
}

// ParseCiphertext parses an envelope of Encrypt. It does not decrypt. For
// anything that is not a well-formed envelope of a known format version and
// algorithm, it returns ErrDecrypt.
func ParseCiphertext(b []byte) (Ciphertext, error) {
	if len(b) < envelopeOverhead || len(b) > maxCiphertextSize {
		return Ciphertext{}, ErrDecrypt
	}
	if b[0] != envelopeMagic[0] || b[1] != envelopeMagic[1] || b[2] != envelopeV1 {
		return Ciphertext{}, ErrDecrypt
	}
	var alg Algorithm
	for a, id := range algorithmIDs {
		if b[3] == id {
			alg = a
		}
	}
	v := binary.BigEndian.Uint32(b[4:8])
	if alg == "" || v == 0 || v > maxKeyVersion {
		return Ciphertext{}, ErrDecrypt
	}
	return Ciphertext{
		Algorithm:  alg,
		KeyVersion: int(v),
		Nonce:      b[headerSize : headerSize+nonceSize],
		Sealed:     b[headerSize+nonceSize:],
	}, nil
}

// MarshalBinary returns the envelope: header, nonce and sealed bytes.
func (c Ciphertext) MarshalBinary() ([]byte, error) {
	id, ok := algorithmIDs[c.Algorithm]
	if !ok || c.KeyVersion < 1 || c.KeyVersion > maxKeyVersion || len(c.Nonce) != nonceSize || len(c.Sealed) < tagSize {
		return nil, fmt.Errorf("kms: malformed ciphertext")
	}
	b := make([]byte, 0, headerSize+nonceSize+len(c.Sealed))
	b = appendHeader(b, id, c.KeyVersion)
	b = append(b, c.Nonce...)
	return append(b, c.Sealed...), nil
}

// maxKeyVersion is the largest key version: versions are uint32 in
// envelopes and int in Go, so the bound keeps both exact on every platform.
const maxKeyVersion = 1<<31 - 1

func appendHeader(b []byte, algID byte, version int) []byte {
	b = append(b, envelopeMagic[0], envelopeMagic[1], envelopeV1, algID)
	return binary.BigEndian.AppendUint32(b, uint32(version))
}

// associatedData returns header || context.
func associatedData(header, context []byte) []byte {
	ad := make([]byte, 0, len(header)+len(context))
	return append(append(ad, header...), context...)
}

// newAEAD returns the AEAD of alg under the encryption subkey of material.
// It zeroes its own copy of the subkey before it returns; the copy inside
// the AEAD (the AES key schedule, the ChaCha20-Poly1305 key) belongs to the
// cipher, which offers no way to zero it.
func newAEAD(alg Algorithm, material []byte) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, material, nil, "minkms/v1/aead/"+string(alg), 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the %s subkey: %w", alg, err)
	}
	defer clear(sub)
	switch alg {
	case AES256:
		block, err := aes.NewCipher(sub)
		if err != nil {
			return nil, fmt.Errorf("creating AES-256: %w", err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("creating AES-256-GCM: %w", err)
		}
		return gcm, nil
	case ChaCha20:
		c, err := chacha20poly1305.New(sub)
		if err != nil {
			return nil, fmt.Errorf("creating ChaCha20-Poly1305: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// seal encrypts plaintext under key version v, bound to context, with
// nonce, which the caller read from its random source (nonceSize bytes),
// and returns the envelope.
func seal(v keyVersion, nonce, plaintext, context []byte) ([]byte, error) {
	aead, err := newAEAD(v.Algorithm, v.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerSize+nonceSize+len(plaintext)+aead.Overhead())
	out = appendHeader(out, algorithmIDs[v.Algorithm], v.Version)
	out = append(out, nonce...)
	ad := associatedData(out[:headerSize], context)
	return aead.Seal(out, nonce, plaintext, ad), nil
}

// open decrypts the envelope b with the key ring. Every failure is
// ErrDecrypt.
func open(ring *keyRing, b, context []byte) ([]byte, error) {
	c, err := ParseCiphertext(b)
	if err != nil {
		return nil, ErrDecrypt
	}
	v, ok := ring.version(c.KeyVersion)
	if !ok || v.Algorithm != c.Algorithm {
		return nil, ErrDecrypt
	}
	aead, err := newAEAD(v.Algorithm, v.Key)
	if err != nil {
		return nil, ErrDecrypt
	}
	plaintext, err := aead.Open(nil, c.Nonce, c.Sealed, associatedData(b[:headerSize], context))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}
