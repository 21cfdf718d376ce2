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

// katEnv returns a Service whose random source yields random (the salt and
// the nonce of one Encrypt), with the key "kat" imported from the bytes
// 0x00..0x1f.
func katEnv(tb testing.TB, alg kms.Algorithm, random []byte) (*env, []byte) {
	tb.Helper()
	e := MustEnv(tb, func(o *kms.Options) { o.Rand = bytes.NewReader(random) })
	material := make([]byte, 32)
	for i := range material {
		material[i] = byte(i)
	}
	if _, err := e.svc.ImportKey(context.Background(), e.admin, "default", "kat", alg, material); err != nil {
		tb.Fatalf("ImportKey: %v", err)
	}
	return e, material
}

// katSalt is the salt of the format-2 known answers: 0xb0..0xcf.
func katSalt() []byte {
	salt := make([]byte, 32)
	for i := range salt {
		salt[i] = 0xb0 + byte(i)
	}
	return salt
}

// The known answers pin the envelope formats: a change to the layout, the
// key derivation or the associated data breaks them. The format-2 answers
// were checked against an independent implementation (Python's hmac and
// pyca/cryptography).
func TestEncryptKnownAnswer(t *testing.T) {
	nonce := mustHex(t, "a0a1a2a3a4a5a6a7a8a9aaab")
	tests := []struct {
		alg  kms.Algorithm
		want string
	}{
		{kms.AES256, "6d6b020100000001" + hex.EncodeToString(katSalt()) + "a0a1a2a3a4a5a6a7a8a9aaab" + "77e1fa42f0004682fafa9449b38cdbe331f21a9df39b"},
		{kms.ChaCha20, "6d6b020200000001" + hex.EncodeToString(katSalt()) + "a0a1a2a3a4a5a6a7a8a9aaab" + "0030210405a582c2078901a5d83b72ab28c7419b28ae"},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			e, _ := katEnv(t, tt.alg, append(katSalt(), nonce...))
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

// Format-1 ciphertexts, written by every build before format 2, keep
// decrypting. These vectors are the known answers of those builds.
func TestDecryptFormat1KnownAnswer(t *testing.T) {
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
			pt, err := e.svc.Decrypt(context.Background(), e.admin, "default", "kat", mustHex(t, tt.want), []byte("context"))
			if err != nil || string(pt) != "minkms" {
				t.Fatalf("Decrypt(format-1 known answer) = %q, %v", pt, err)
			}
			// The format-1 writer the benchmarks measure is the old one.
			kms.SetEnvelopeFormat(e.svc, 1)
			ct, err := e.svc.Encrypt(context.Background(), e.admin, "default", "kat", []byte("minkms"), []byte("context"))
			wantErr(t, err, nil)
			if got := hex.EncodeToString(ct); got != tt.want {
				t.Fatalf("format-1 ciphertext = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEnvelopeLayout opens a ciphertext with nothing but the standard
// library and the layout documented in envelope.go.
func TestEnvelopeLayout(t *testing.T) {
	salt, nonce := katSalt(), mustHex(t, "000102030405060708090a0b")
	e, material := katEnv(t, kms.AES256, append(bytes.Clone(salt), nonce...))
	context_ := []byte("bound")
	ct, err := e.svc.Encrypt(context.Background(), e.admin, "default", "kat", []byte("secret"), context_)
	wantErr(t, err, nil)

	if len(ct) != len("secret")+68 {
		t.Fatalf("ciphertext of %d bytes, want %d (docs/api.md: 68 bytes longer)", len(ct), len("secret")+68)
	}
	if want := mustHex(t, "6d6b0201"+"00000001"); !bytes.Equal(ct[:8], want) {
		t.Fatalf("header = %x, want %x", ct[:8], want)
	}
	if !bytes.Equal(ct[8:40], salt) {
		t.Fatalf("salt = %x, want %x", ct[8:40], salt)
	}
	if !bytes.Equal(ct[40:52], nonce) {
		t.Fatalf("nonce = %x, want %x", ct[40:52], nonce)
	}
	key, err := hkdf.Key(sha256.New, material, nil, "minkms/v2/aead/AES256"+string(salt), 32)
	if err != nil {
		t.Fatal(err)
	}
	ad := append(append([]byte(nil), ct[:52]...), context_...)
	pt, err := mustGCM(t, key).Open(nil, nonce, ct[52:], ad)
	if err != nil || string(pt) != "secret" {
		t.Fatalf("opening with crypto/cipher = %q, %v", pt, err)
	}
}

// TestEnvelopeLayoutFormat1 makes a format-1 ciphertext with nothing but
// the standard library and the layout documented in envelope.go, and
// decrypts it.
func TestEnvelopeLayoutFormat1(t *testing.T) {
	e, material := katEnv(t, kms.AES256, nil)
	sub, err := hkdf.Key(sha256.New, material, nil, "minkms/v1/aead/AES256", 32)
	if err != nil {
		t.Fatal(err)
	}
	header, nonce := mustHex(t, "6d6b0101"+"00000001"), mustHex(t, "0c0d0e0f1011121314151617")
	ct := mustGCM(t, sub).Seal(append(bytes.Clone(header), nonce...), nonce, []byte("secret"), append(bytes.Clone(header), "bound"...))
	pt, err := e.svc.Decrypt(context.Background(), e.admin, "default", "kat", ct, []byte("bound"))
	if err != nil || string(pt) != "secret" {
		t.Fatalf("Decrypt(format 1) = %q, %v", pt, err)
	}
}

func mustGCM(tb testing.TB, key []byte) cipher.AEAD {
	tb.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		tb.Fatal(err)
	}
	return gcm
}

// repeatedNonce is a random source whose every read ends in the same 12
// bytes, a nonce, after a counter: what a nonce collision looks like, made
// certain.
type repeatedNonce struct{ n byte }

func (r *repeatedNonce) Read(b []byte) (int, error) {
	r.n++
	for i := range b {
		b[i] = r.n
	}
	copy(b[max(0, len(b)-12):], "same nonce!!")
	return len(b), nil
}

// TestEncryptKeyPerMessage: every message has its own AEAD key, so even a
// repeated nonce does not repeat a keystream. Under one key per version
// (format 1), two ciphertexts under one nonce reveal the XOR of their
// plaintexts and let a forger compute GCM's authentication key.
func TestEncryptKeyPerMessage(t *testing.T) {
	for _, alg := range []kms.Algorithm{kms.AES256, kms.ChaCha20} {
		t.Run(string(alg), func(t *testing.T) {
			ctx := context.Background()
			e := MustEnv(t, func(o *kms.Options) { o.Rand = &repeatedNonce{} })
			if _, err := e.svc.CreateKey(ctx, e.admin, "default", "k", alg); err != nil {
				t.Fatal(err)
			}
			p1, p2 := bytes.Repeat([]byte{0x00}, 32), bytes.Repeat([]byte{0xff}, 32)
			c1, err := e.svc.Encrypt(ctx, e.admin, "default", "k", p1, nil)
			wantErr(t, err, nil)
			c2, err := e.svc.Encrypt(ctx, e.admin, "default", "k", p2, nil)
			wantErr(t, err, nil)
			n1, n2 := mustParse(t, c1), mustParse(t, c2)
			if n1.Format != 2 || n2.Format != 2 {
				t.Fatalf("formats %d, %d, want 2", n1.Format, n2.Format)
			}
			if !bytes.Equal(n1.Nonce, n2.Nonce) {
				t.Fatalf("the test's random source did not repeat the nonce: %x, %x", n1.Nonce, n2.Nonce)
			}
			s1, s2 := n1.Sealed[:32], n2.Sealed[:32]
			same := 0
			for i := range s1 {
				if s1[i]^s2[i] == p1[i]^p2[i] {
					same++
				}
			}
			if same == len(s1) {
				t.Fatal("two messages under one nonce share a keystream: the AEAD key is not per message")
			}
			for i, ct := range [][]byte{c1, c2} {
				pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct, nil)
				if err != nil || !bytes.Equal(pt, [][]byte{p1, p2}[i]) {
					t.Fatalf("Decrypt #%d = %x, %v", i+1, pt, err)
				}
			}
		})
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
	kms.SetEnvelopeFormat(e.svc, 1)
	v1CT, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("plaintext"), []byte("ctx"))
	wantErr(t, err, nil)
	kms.SetEnvelopeFormat(e.svc, 0)
	if ct[2] != 2 || v1CT[2] != 1 {
		t.Fatalf("formats %d and %d, want 2 and 1", ct[2], v1CT[2])
	}

	set := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	flip := func(b []byte, i int) []byte { return set(b, i, b[i]^0x80) }
	// A format-2 envelope relabelled as format 1 and the other way round.
	as1 := set(ct, 2, 1)
	as2 := set(append(bytes.Clone(v1CT), make([]byte, 32)...), 2, 2)
	tests := []struct {
		name       string
		ciphertext []byte
		context    string
	}{
		{"empty", nil, "ctx"},
		{"short", ct[:10], "ctx"},
		{"short format 2", ct[:8+32+12+15], "ctx"},
		{"short format 1", v1CT[:8+12+15], "ctx"},
		{"truncated tag", ct[:len(ct)-1], "ctx"},
		{"bad magic", flip(ct, 0), "ctx"},
		{"unknown format", set(ct, 2, 3), "ctx"},
		{"format zero", set(ct, 2, 0), "ctx"},
		{"format 2 as format 1", as1, "ctx"},
		{"format 1 as format 2", as2, "ctx"},
		{"unknown algorithm", set(ct, 3, 9), "ctx"},
		{"other algorithm", set(ct, 3, 2), "ctx"},
		{"missing version", set(ct, 7, 7), "ctx"},
		{"version zero", set(ct, 7, 0), "ctx"},
		{"tampered salt", flip(ct, 10), "ctx"},
		{"tampered nonce", flip(ct, 45), "ctx"},
		{"tampered body", flip(ct, len(ct)-20), "ctx"},
		{"tampered tag", flip(ct, len(ct)-1), "ctx"},
		{"wrong context", ct, "other"},
		{"no context", ct, ""},
		{"other key", otherCT, "ctx"},
		{"format 1 tampered nonce", flip(v1CT, 10), "ctx"},
		{"format 1 tampered tag", flip(v1CT, len(v1CT)-1), "ctx"},
		{"format 1 wrong context", v1CT, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", tt.ciphertext, []byte(tt.context))
			if err != kms.ErrDecrypt || pt != nil {
				t.Fatalf("Decrypt = %q, %v; want exactly ErrDecrypt", pt, err)
			}
		})
	}
	for i, c := range [][]byte{ct, v1CT} {
		if pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", c, []byte("ctx")); err != nil || string(pt) != "plaintext" {
			t.Fatalf("Decrypt(untouched #%d) = %q, %v", i+1, pt, err)
		}
	}
}

func FuzzParseCiphertext(f *testing.F) {
	f.Add(mustHex(f, "6d6b020100000001"+hex.EncodeToString(katSalt())+"a0a1a2a3a4a5a6a7a8a9aaab"+"00112233445566778899aabbccddeeff"))
	f.Add(mustHex(f, "6d6b020200000003"+hex.EncodeToString(katSalt())+"a0a1a2a3a4a5a6a7a8a9aaab"+"00112233445566778899aabbccddeeff01"))
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
		if c.KeyVersion < 1 || (c.Algorithm != kms.AES256 && c.Algorithm != kms.ChaCha20) ||
			(c.Format == 1 && len(c.Salt) != 0) || (c.Format == 2 && len(c.Salt) != 32) || (c.Format != 1 && c.Format != 2) {
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
