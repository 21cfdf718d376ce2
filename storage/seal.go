package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/minkms/minkms/storage/kv"
)

// RootKeySize is the length of the cluster root key in bytes.
const RootKeySize = 32

// The HKDF labels. Changing one makes every existing state file unreadable.
const (
	sealInfo   = "minkms state v1 seal"
	checkInfo  = "minkms state v1 root key check"
	checkLabel = "minkms root key check value"
)

// sealFormat is the first byte of every sealed value, so that a later
// format (another cipher, a rotated key) can be told apart.
const sealFormat = 1

const nonceSize = 12

// sealer seals and opens values with a key derived from the root key. It is
// safe for concurrent use.
type sealer struct {
	aead cipher.AEAD
}

// newSealer derives the sealing key and the root-key check value from
// rootKey. It keeps neither the root key nor the derived key bytes: the
// derived key lives only inside the AES cipher.
func newSealer(rootKey []byte) (*sealer, []byte, error) {
	if len(rootKey) != RootKeySize {
		return nil, nil, fmt.Errorf("%w: root key must be %d bytes", kv.ErrInvalid, RootKeySize)
	}
	sealKey, err := hkdf.Key(sha256.New, rootKey, nil, sealInfo, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive the sealing key: %w", err)
	}
	defer clear(sealKey)
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, nil, fmt.Errorf("create the sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("create the sealing cipher: %w", err)
	}

	checkKey, err := hkdf.Key(sha256.New, rootKey, nil, checkInfo, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive the root key check key: %w", err)
	}
	defer clear(checkKey)
	mac := hmac.New(sha256.New, checkKey)
	mac.Write([]byte(checkLabel))
	return &sealer{aead: aead}, mac.Sum(nil), nil
}

// associatedData binds a sealed value to its entry. Bucket paths contain no
// NUL byte, so the encoding is unambiguous.
func associatedData(bucket, name string) []byte {
	ad := make([]byte, 0, len(bucket)+1+len(name))
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	return append(ad, name...)
}

// seal returns [format][nonce][ciphertext and tag].
func (s *sealer) seal(bucket, name string, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+s.aead.Overhead())
	out[0] = sealFormat
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("read a nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+nonceSize], plaintext, associatedData(bucket, name)), nil
}

// open reverses seal. Its error says nothing of the value.
func (s *sealer) open(bucket, name string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+s.aead.Overhead() || sealed[0] != sealFormat {
		return nil, ErrCorrupt
	}
	plaintext, err := s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], associatedData(bucket, name))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plaintext, nil
}

// RootKeyCheck returns the check value of rootKey: the value a state file
// stores to tell whether it was written under this root key. It reveals
// nothing of the key, so it may be kept beside the data (the server keeps a
// copy outside the state file, so that a node whose state file was lost
// still refuses a wrong root key before it rebuilds the state from raft).
func RootKeyCheck(rootKey []byte) ([]byte, error) {
	_, check, err := newSealer(rootKey)
	return check, err
}
