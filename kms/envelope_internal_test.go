package kms

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
)

// TestAEADKeyKnownAnswer pins the AEAD key derivation of both formats at
// the level of the key itself, so that a change to it fails here even if
// Encrypt and Decrypt changed together. Material 0x00..0x1f, salt
// 0xb0..0xcf; the answers agree with Python's hmac and hashlib.
func TestAEADKeyKnownAnswer(t *testing.T) {
	material := make([]byte, KeySize)
	for i := range material {
		material[i] = byte(i)
	}
	salt := make([]byte, saltSize)
	for i := range salt {
		salt[i] = 0xb0 + byte(i)
	}
	tests := []struct {
		alg     Algorithm
		format1 string
		format2 string
	}{
		{AES256, "2d65eef2db4389b92e720a8a4990c1f889754818bf927dea3eaa510225b8bc93", "6b6b5a5f2da75181234d225d47fe95fe46e47efe6638ccc9995a8bd0b0d1c675"},
		{ChaCha20, "a79b43fbfdee8d3ef61aa6a247a851716a5ee3dbc6e629ac7a181585d09c4b7f", "5ad1b723a6fa7232cd745e2672fc74ac7986bed8992fb9c5287eb339bbc98191"},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			k1, err := aeadKey(format1, tt.alg, material, nil)
			if err != nil || hex.EncodeToString(k1) != tt.format1 {
				t.Fatalf("format-1 key = %x, %v; want %s", k1, err, tt.format1)
			}
			k2, err := aeadKey(format2, tt.alg, material, salt)
			if err != nil || hex.EncodeToString(k2) != tt.format2 {
				t.Fatalf("format-2 key = %x, %v; want %s", k2, err, tt.format2)
			}
		})
	}
}

// TestCachedAEADMatchesDerivation: the AEADs of the cached path
// (versionState.aead, which reuses per-version state between messages)
// seal exactly as the AEADs made from aeadKey, the reference derivation,
// for random salts and from concurrent goroutines, as requests share a
// cached ring.
func TestCachedAEADMatchesDerivation(t *testing.T) {
	for _, alg := range []Algorithm{AES256, ChaCha20} {
		t.Run(string(alg), func(t *testing.T) {
			material := make([]byte, KeySize)
			rand.Read(material)
			vs := &versionState{v: &keyVersion{Version: 1, Algorithm: alg, Key: material}}
			nonce, plaintext, ad := make([]byte, nonceSize), []byte("plaintext"), []byte("ad")
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 50 {
						salt := make([]byte, saltSize)
						rand.Read(salt)
						for _, format := range []int{format1, format2} {
							s := salt
							if format == format1 {
								s = nil
							}
							cached, err := vs.aead(format, s)
							if err != nil {
								t.Errorf("format %d: cached AEAD: %v", format, err)
								return
							}
							ref, err := newAEAD(format, alg, material, s)
							if err != nil {
								t.Errorf("format %d: reference AEAD: %v", format, err)
								return
							}
							got, want := cached.Seal(nil, nonce, plaintext, ad), ref.Seal(nil, nonce, plaintext, ad)
							if !bytes.Equal(got, want) {
								t.Errorf("format %d, salt %x: cached AEAD seals %x, reference %x", format, salt, got, want)
								return
							}
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
