package kms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/minkms/minkms/kms"
)

// katEnv returns a Service whose random source yields nonce, with the key
// "kat" imported from the bytes 0x00..0x1f.
func katEnv(tb testing.TB, alg kms.Algorithm, nonce []byte) (*env, []byte) {
	tb.Helper()
	e := MustEnv(tb, func(o *kms.Options) { o.Rand = bytes.NewReader(nonce) })
	material := make([]byte, 32)
	for i := range material {
		material[i] = byte(i)
	}
	if _, err := e.svc.ImportKey(context.Background(), e.admin, "default", "kat", alg, material); err != nil {
		tb.Fatalf("ImportKey: %v", err)
	}
	return e, material
}

// The known answers pin the envelope format: a change to the layout, the
// subkey derivation or the associated data breaks them.
func TestEncryptKnownAnswer(t *testing.T) {
	nonce := mustHex(t, "a0a1a2a3a4a5a6a7a8a9aaab")
	tests := []struct {
		alg  kms.Algorithm
		want string
	}{
		{kms.AES256, "6d6b010100000001a0a1a2a3a4a5a6a7a8a9aaab13cc05e47e5b2df009d6106c34d63c789da38f94ff44"},
		{kms.ChaCha20, "6d6b010200000001a0a1a2a3a4a5a6a7a8a9aaab9a2c23b5ca3445f01008452d5def0d197a893e2bfaa5"},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			e, _ := katEnv(t, tt.alg, nonce)
			ct, err := e.svc.Encrypt(context.Background(), e.admin, "default", "kat", []byte("minkms"), []byte("context"))
			wantErr(t, err, nil)
			if got := hex.EncodeToString(ct); got != tt.want {
				t.Fatalf("ciphertext = %s, want %s", got, tt.want)
			}
			pt, err := e.svc.Decrypt(context.Background(), e.admin, "default", "kat", mustHex(t, tt.want), []byte("context"))
			if err != nil || string(pt) != "minkms" {
				t.Fatalf("Decrypt(known answer) = %q, %v", pt, err)
			}
		})
	}
}

// TestEnvelopeLayout opens a ciphertext with nothing but the standard
// library and the layout documented in envelope.go.
func TestEnvelopeLayout(t *testing.T) {
	nonce := mustHex(t, "000102030405060708090a0b")
	e, material := katEnv(t, kms.AES256, nonce)
	context_ := []byte("bound")
	ct, err := e.svc.Encrypt(context.Background(), e.admin, "default", "kat", []byte("secret"), context_)
	wantErr(t, err, nil)

	if want := mustHex(t, "6d6b0101"+"00000001"); !bytes.Equal(ct[:8], want) {
		t.Fatalf("header = %x, want %x", ct[:8], want)
	}
	if !bytes.Equal(ct[8:20], nonce) {
		t.Fatalf("nonce = %x, want %x", ct[8:20], nonce)
	}
	sub, err := hkdf.Key(sha256.New, material, nil, "minkms/v1/aead/AES256", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	ad := append(append([]byte(nil), ct[:8]...), context_...)
	pt, err := gcm.Open(nil, ct[8:20], ct[20:], ad)
	if err != nil || string(pt) != "secret" {
		t.Fatalf("opening with crypto/cipher = %q, %v", pt, err)
	}
}

func TestDecryptFailures(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	e.MustKey(t, "default", "other")
	ct, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("plaintext"), []byte("ctx"))
	wantErr(t, err, nil)
	otherCT, err := e.svc.Encrypt(ctx, e.admin, "default", "other", []byte("plaintext"), []byte("ctx"))
	wantErr(t, err, nil)

	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 0x80
		return b
	}
	withVersion := func(v byte) []byte {
		b := bytes.Clone(ct)
		b[7] = v
		return b
	}
	withAlg := func(a byte) []byte {
		b := bytes.Clone(ct)
		b[3] = a
		return b
	}
	tests := []struct {
		name       string
		ciphertext []byte
		context    string
	}{
		{"empty", nil, "ctx"},
		{"short", ct[:10], "ctx"},
		{"truncated tag", ct[:len(ct)-1], "ctx"},
		{"bad magic", flip(0), "ctx"},
		{"unknown format", flip(2), "ctx"},
		{"unknown algorithm", withAlg(9), "ctx"},
		{"other algorithm", withAlg(2), "ctx"},
		{"missing version", withVersion(7), "ctx"},
		{"version zero", withVersion(0), "ctx"},
		{"tampered nonce", flip(10), "ctx"},
		{"tampered body", flip(len(ct) - 20), "ctx"},
		{"tampered tag", flip(len(ct) - 1), "ctx"},
		{"wrong context", ct, "other"},
		{"no context", ct, ""},
		{"other key", otherCT, "ctx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", tt.ciphertext, []byte(tt.context))
			if err != kms.ErrDecrypt || pt != nil {
				t.Fatalf("Decrypt = %q, %v; want exactly ErrDecrypt", pt, err)
			}
		})
	}
}

func FuzzParseCiphertext(f *testing.F) {
	f.Add(mustHex(f, "6d6b010100000001"+"a0a1a2a3a4a5a6a7a8a9aaab"+"00112233445566778899aabbccddeeff"))
	f.Add(mustHex(f, "6d6b010200000007"+"a0a1a2a3a4a5a6a7a8a9aaab"+"00112233445566778899aabbccddeeff0102"))
	f.Add(mustHex(f, "6d6b0103000000010000"))
	f.Add([]byte{})
	f.Add([]byte("mk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := kms.ParseCiphertext(b)
		if err != nil {
			if err != kms.ErrDecrypt {
				t.Fatalf("ParseCiphertext error %v, want ErrDecrypt", err)
			}
			return
		}
		// Only valid envelopes parse: what parsed encodes back to the input.
		again, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed %x to %+v, which encodes to %x, %v", b, c, again, err)
		}
		if c.KeyVersion < 1 || (c.Algorithm != kms.AES256 && c.Algorithm != kms.ChaCha20) {
			t.Fatalf("parsed an invalid envelope: %+v", c)
		}
	})
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
