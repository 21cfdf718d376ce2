package kms

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// A ciphertext of Encrypt is an envelope that says how to open it. Encrypt
// writes format 2; Decrypt opens formats 1 and 2.
//
// Format 2 gives every message its own AEAD key:
//
//	offset  size  field
//	0       2     magic "mk" (0x6d 0x6b)
//	2       1     format, 2
//	3       1     algorithm: 1 AES-256-GCM, 2 ChaCha20-Poly1305
//	4       4     key version, uint32 big-endian, ≥ 1
//	8       32    salt, random
//	40      12    nonce, random
//	52      n+16  AEAD output: the sealed plaintext and the 16-byte tag
//
//	message key = HKDF-SHA256(secret: the version's material, salt: none,
//	                          info: "minkms/v2/aead/" + algorithm name + salt, 32 bytes)
//
// The associated data is the 52 bytes at offsets 0 to 52 (header, salt and
// nonce) followed by the caller's context. HKDF without a salt is one
// HMAC-SHA256 keyed by the version's material (extract), then
// HMAC-SHA256(that PRK, info || 0x01) (expand): the message key is a PRF of
// the version, keyed by its material and evaluated at the random salt. The
// salt goes into info, not into HKDF's salt, because info is the PRF's input
// while HKDF's salt is HMAC's key. The salt has a fixed length, so the info
// string names the algorithm and the salt unambiguously.
//
// The bound: a message key repeats only if two salts of one key version
// collide, with probability at most q²/2^257 for q messages; at q = 2^64
// that is 2^-129, and a repeated message key still needs the same random
// nonce too (another 96 bits) before a nonce is reused under it. Each
// message key seals one message of at most 1 MiB, far inside AES-GCM's and
// ChaCha20-Poly1305's per-key limits. So the figure relied on is 2^64
// messages per key version (11 million years at 50,000 a second) with a
// collision probability below 2^-128. Format 1 used one key per version
// with a random 96-bit nonce: q²/2^97, so about 2^32 messages per version
// for a 2^-33 chance of a repeated nonce, which breaks GCM's authenticity
// and reveals the XOR of two plaintexts.
//
// Format 1 (read only):
//
//	offset  size  field
//	0       2     magic "mk"
//	2       1     format, 1
//	3       1     algorithm
//	4       4     key version
//	8       12    nonce, random
//	20      n+16  AEAD output
//
// Its AEAD key is HKDF-SHA256(material, salt none, info "minkms/v1/aead/" +
// the algorithm's name, 32 bytes), the same for every message of the
// version, and its associated data is the 8-byte header followed by the
// context.
//
// In both formats the associated data starts with a prefix of fixed length,
// so the pair (prefix, context) is unambiguous; binding the header means
// that neither the format, the algorithm nor the key version can be changed
// without the tag failing. HMAC uses another subkey of the same material
// (info "minkms/v1/hmac", see Service.HMAC), so no key is ever used for two
// purposes.

const (
	format1 = 1
	format2 = 2
	// envelopeFormat is the format Encrypt writes.
	envelopeFormat = format2

	headerSize        = 8
	saltSize          = 32
	nonceSize         = 12
	tagSize           = 16
	maxCiphertextSize = 1 << 20
	// MaxPlaintext is the largest plaintext Encrypt accepts, so that the
	// ciphertext fits in 1 MiB.
	MaxPlaintext = maxCiphertextSize - (headerSize + saltSize + nonceSize + tagSize)
)

var envelopeMagic = [2]byte{'m', 'k'}

// algorithmIDs are the algorithm bytes of the envelope.
var algorithmIDs = map[Algorithm]byte{AES256: 1, ChaCha20: 2}

// algorithmsByID is algorithmIDs inverted, so that parsing an envelope
// looks its algorithm up instead of ranging over a map.
var algorithmsByID = func() map[byte]Algorithm {
	m := make(map[byte]Algorithm, len(algorithmIDs))
	for alg, id := range algorithmIDs {
		m[id] = alg
	}
	return m
}()

// saltLen returns the salt length of format, and whether Decrypt knows the
// format.
func saltLen(format int) (int, bool) {
	switch format {
	case format1:
		return 0, true
	case format2:
		return saltSize, true
	}
	return 0, false
}

// adPrefixLen returns how many leading bytes of an envelope of format go
// into the associated data: the header in format 1; header, salt and nonce
// in format 2.
func adPrefixLen(format int) int {
	if format == format1 {
		return headerSize
	}
	return headerSize + saltSize + nonceSize
}

// Ciphertext is a parsed envelope.
type Ciphertext struct {
	Format     int // 1 or 2
	Algorithm  Algorithm
	KeyVersion int
	Salt       []byte // 32 bytes in format 2; none in format 1
	Nonce      []byte // 12 bytes
	Sealed     []byte // the AEAD output: sealed plaintext and tag
}

// ParseCiphertext parses an envelope of Encrypt. It does not decrypt. For
// anything that is not a well-formed envelope of a known format and
// algorithm, it returns ErrDecrypt.
func ParseCiphertext(b []byte) (Ciphertext, error) {
	if len(b) < headerSize || len(b) > maxCiphertextSize {
		return Ciphertext{}, ErrDecrypt
	}
	if b[0] != envelopeMagic[0] || b[1] != envelopeMagic[1] {
		return Ciphertext{}, ErrDecrypt
	}
	format := int(b[2])
	sl, ok := saltLen(format)
	if !ok || len(b) < headerSize+sl+nonceSize+tagSize {
		return Ciphertext{}, ErrDecrypt
	}
	alg, known := algorithmsByID[b[3]]
	v := binary.BigEndian.Uint32(b[4:8])
	if !known || v == 0 || v > maxKeyVersion {
		return Ciphertext{}, ErrDecrypt
	}
	c := Ciphertext{
		Format:     format,
		Algorithm:  alg,
		KeyVersion: int(v),
		Nonce:      b[headerSize+sl : headerSize+sl+nonceSize],
		Sealed:     b[headerSize+sl+nonceSize:],
	}
	if sl > 0 {
		c.Salt = b[headerSize : headerSize+sl]
	}
	return c, nil
}

// MarshalBinary returns the envelope: header, salt, nonce and sealed bytes.
func (c Ciphertext) MarshalBinary() ([]byte, error) {
	id, ok := algorithmIDs[c.Algorithm]
	sl, known := saltLen(c.Format)
	if !ok || !known || len(c.Salt) != sl || c.KeyVersion < 1 || c.KeyVersion > maxKeyVersion ||
		len(c.Nonce) != nonceSize || len(c.Sealed) < tagSize {
		return nil, fmt.Errorf("kms: malformed ciphertext")
	}
	b := make([]byte, 0, headerSize+sl+nonceSize+len(c.Sealed))
	b = appendHeader(b, c.Format, id, c.KeyVersion)
	b = append(b, c.Salt...)
	b = append(b, c.Nonce...)
	return append(b, c.Sealed...), nil
}

// maxKeyVersion is the largest key version: versions are uint32 in
// envelopes and int in Go, so the bound keeps both exact on every platform.
const maxKeyVersion = 1<<31 - 1

func appendHeader(b []byte, format int, algID byte, version int) []byte {
	b = append(b, envelopeMagic[0], envelopeMagic[1], byte(format), algID)
	return binary.BigEndian.AppendUint32(b, uint32(version))
}

// aeadKey derives the AEAD key of a message of format under material: the
// version's subkey in format 1, the message's own key from salt in format 2.
// The caller zeroes it. (The cached path, versionState.aead, computes the
// same keys from a precomputed HKDF-Extract.)
func aeadKey(format int, alg Algorithm, material, salt []byte) ([]byte, error) {
	switch format {
	case format1:
		return hkdf.Key(sha256.New, material, nil, "minkms/v1/aead/"+string(alg), 32)
	case format2:
		if len(salt) != saltSize {
			return nil, fmt.Errorf("salt of %d bytes, want %d", len(salt), saltSize)
		}
		return hkdf.Key(sha256.New, material, nil, "minkms/v2/aead/"+string(alg)+string(salt), 32)
	}
	return nil, fmt.Errorf("unknown envelope format %d", format)
}

// newAEAD returns the AEAD of alg for a message of format under material
// with salt (none in format 1). It zeroes its own copy of the derived key
// before it returns; the copy inside the AEAD (the AES key schedule, the
// ChaCha20-Poly1305 key) belongs to the cipher, which offers no way to zero
// it.
func newAEAD(format int, alg Algorithm, material, salt []byte) (cipher.AEAD, error) {
	key, err := aeadKey(format, alg, material, salt)
	if err != nil {
		return nil, fmt.Errorf("deriving the %s key: %w", alg, err)
	}
	defer clear(key)
	return aeadOf(alg, key)
}

// randomLen returns how many random bytes seal takes for format: salt and
// nonce.
func randomLen(format int) int {
	sl, _ := saltLen(format)
	return sl + nonceSize
}

// seal encrypts plaintext under key version vs in an envelope of format,
// bound to context, with salt and nonce read from random. The envelope and
// the associated data share one allocation.
func seal(vs *versionState, format int, random io.Reader, plaintext, context []byte) ([]byte, error) {
	head := headerSize + randomLen(format) // header, salt and nonce
	prefix := adPrefixLen(format)
	n := head + len(plaintext) + tagSize
	buf := make([]byte, n+prefix+len(context))
	out, ad := buf[:n:n], buf[n:]
	appendHeader(out[:0], format, vs.algID, vs.v.Version)
	if _, err := io.ReadFull(random, out[headerSize:head]); err != nil {
		return nil, fmt.Errorf("creating salt and nonce: %w", err)
	}
	salt, nonce := out[headerSize:head-nonceSize], out[head-nonceSize:head]
	aead, err := vs.aead(format, salt)
	if err != nil {
		return nil, err
	}
	copy(ad, out[:prefix])
	copy(ad[prefix:], context)
	return aead.Seal(out[:head], nonce, plaintext, ad), nil
}

// open decrypts the envelope b, of either format, with the key ring. Every
// failure is ErrDecrypt.
func open(ring *ringState, b, context []byte) ([]byte, error) {
	c, err := ParseCiphertext(b)
	if err != nil {
		return nil, ErrDecrypt
	}
	vs, ok := ring.version(c.KeyVersion)
	if !ok || vs.v.Algorithm != c.Algorithm {
		return nil, ErrDecrypt
	}
	aead, err := vs.aead(c.Format, c.Salt)
	if err != nil {
		return nil, ErrDecrypt
	}
	// The plaintext and the associated data share one allocation; the
	// plaintext's capacity ends where the associated data begins.
	prefix, n := adPrefixLen(c.Format), len(c.Sealed)-tagSize
	buf := make([]byte, n+prefix+len(context))
	ad := buf[n:]
	copy(ad, b[:prefix])
	copy(ad[prefix:], context)
	plaintext, err := aead.Open(buf[:0:n], c.Nonce, c.Sealed, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}
