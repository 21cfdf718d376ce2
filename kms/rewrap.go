package kms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// ActionKeyRewrap allows Rewrap: turning a ciphertext of a key into one of
// the same plaintext under the key's newest version. It is an action of
// its own, not implied by key:decrypt and key:encrypt, because the caller
// never sees the plaintext.
const ActionKeyRewrap Action = "key:rewrap"

// Rewrap decrypts ciphertext, a ciphertext of Encrypt (or GenerateKey)
// bound to context, and encrypts the same plaintext, bound to the same
// context, under the key's newest version in the newest envelope format.
// The plaintext never leaves the node and is zeroed before Rewrap returns.
// After the caller is authorised and the key found, every failure to
// decrypt is exactly ErrDecrypt, as in Decrypt.
func (s *Service) Rewrap(ctx context.Context, c Caller, enclave, name string, ciphertext, context []byte) ([]byte, error) {
	if err := s.authorizeKey(ctx, c, enclave, ActionKeyRewrap, name); err != nil {
		return nil, err
	}
	e, err := s.ring(ctx, enclave, name)
	if err != nil {
		return nil, err
	}
	defer e.release()
	return s.rewrapWith(e.ring, ciphertext, context)
}

// rewrapWith opens ciphertext with ring and seals its plaintext again under
// the ring's newest version.
func (s *Service) rewrapWith(ring *ringState, ciphertext, context []byte) ([]byte, error) {
	plaintext, err := open(ring, ciphertext, context)
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(plaintext)
	return s.sealWith(ring, plaintext, context)
}

// sealWith encrypts plaintext under the newest version of ring, as Encrypt.
func (s *Service) sealWith(ring *ringState, plaintext, context []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, Invalidf("plaintext too large: at most %d bytes", MaxPlaintext)
	}
	format := s.envelopeFormat
	if format == 0 {
		format = envelopeFormat
	}
	ct, err := seal(ring.newest(), format, s.rand, plaintext, context)
	if err != nil {
		return nil, fmt.Errorf("encrypting: %w: %w", ErrInternal, err)
	}
	return ct, nil
}

// hmacWith returns the HMAC of message under the newest version of ring,
// as HMAC.
func hmacWith(ring *ringState, message []byte) ([]byte, error) {
	if len(message) > maxCiphertextSize {
		return nil, Invalidf("message too large: at most %d bytes", maxCiphertextSize)
	}
	sub, err := ring.newest().hmacSubkey()
	if err != nil {
		return nil, fmt.Errorf("deriving the HMAC subkey: %w: %w", ErrInternal, err)
	}
	m := hmac.New(sha256.New, sub)
	m.Write(message)
	return m.Sum(nil), nil
}
