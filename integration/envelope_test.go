package integration_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestCiphertextFormats: the binary writes format-2 ciphertexts (a salt of
// their own, 68 bytes of overhead) and still decrypts the format-1
// ciphertexts of earlier builds, here the known answers of kms's tests
// under the key 0x00..0x1f.
func TestCiphertextFormats(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	c := n.Client(n.AdminKey)
	ctx := ctxT(t)
	material := make([]byte, 32)
	for i := range material {
		material[i] = byte(i)
	}
	format1 := map[string]string{
		"AES256":   "6d6b010100000001a0a1a2a3a4a5a6a7a8a9aaab13cc05e47e5b2df009d6106c34d63c789da38f94ff44",
		"ChaCha20": "6d6b010200000001a0a1a2a3a4a5a6a7a8a9aaab9a2c23b5ca3445f01008452d5def0d197a893e2bfaa5",
	}
	for alg, vector := range format1 {
		t.Run(alg, func(t *testing.T) {
			name := "kat-" + alg
			if err := c.ImportKey(ctx, name, &api.ImportKeyRequest{Key: material, Cipher: alg}); err != nil {
				t.Fatalf("ImportKey: %v", err)
			}
			pt, err := c.Decrypt(ctx, name, mustHex(t, vector), []byte("context"))
			if err != nil || string(pt) != "minkms" {
				t.Fatalf("Decrypt(format-1 known answer) = %q, %v", pt, err)
			}
			if _, err := c.Decrypt(ctx, name, mustHex(t, vector), []byte("other")); !errors.Is(err, api.ErrDecrypt) {
				t.Fatalf("Decrypt(format 1, wrong context) = %v, want ErrDecrypt", err)
			}

			dek, err := c.GenerateKey(ctx, name, []byte("context"))
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if len(dek.Ciphertext) != 32+68 || !bytes.Equal(dek.Ciphertext[:3], []byte("mk\x02")) {
				t.Fatalf("data key ciphertext %x: want format 2, 100 bytes", dek.Ciphertext)
			}
			pt, err = c.Decrypt(ctx, name, dek.Ciphertext, []byte("context"))
			if err != nil || !bytes.Equal(pt, dek.Plaintext) {
				t.Fatalf("Decrypt(format 2) = %x, %v", pt, err)
			}
		})
	}
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}
