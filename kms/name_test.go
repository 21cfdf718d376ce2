package kms_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/minkms/minkms/kms"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "my-key", true},
		{"all classes", "Az09_.-", true},
		{"80 chars", strings.Repeat("a", 80), true},
		{"dots inside", "a..b", true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"slash", "a/b", false},
		{"81 chars", strings.Repeat("a", 81), false},
		{"space", "a b", false},
		{"colon", "h1:x", false},
		{"unicode", "schlüssel", false},
		{"nul", "a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := kms.ValidName(tt.in)
			if tt.ok {
				wantErr(t, err, nil)
				return
			}
			wantCode(t, err, kms.Invalid)
		})
	}
}

func TestIdentity(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id := kms.IdentityOf(&x509.Certificate{RawSubjectPublicKeyInfo: spki})
	if got, err := kms.ParseIdentity(string(id)); err != nil || got != id {
		t.Fatalf("ParseIdentity(IdentityOf) = %q, %v", got, err)
	}
	if !strings.HasPrefix(string(id), "h1:") || len(id) != 46 {
		t.Fatalf("IdentityOf = %q, want h1: and 43 base64url characters", id)
	}

	bad := []struct{ name, in string }{
		{"empty", ""},
		{"no prefix", string(id)[3:]},
		{"other prefix", "h2:" + string(id)[3:]},
		{"short", string(id)[:45]},
		{"long", string(id) + "A"},
		{"padding", string(id)[:45] + "="},
		{"std alphabet", string(id)[:45] + "+"},
		{"non-canonical last char", string(id)[:45] + nonCanonical(string(id)[45])},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kms.ParseIdentity(tt.in)
			wantCode(t, err, kms.Invalid)
		})
	}
}

// nonCanonical returns a base64url character that differs from c only in
// the 2 low bits, which a 32-byte value leaves zero in its last character.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i|1])
}

func TestParseAlgorithm(t *testing.T) {
	tests := []struct {
		in   string
		want kms.Algorithm
		ok   bool
	}{
		{"", kms.AES256, true},
		{"AES256", kms.AES256, true},
		{"AES-256-GCM", kms.AES256, true},
		{"ChaCha20", kms.ChaCha20, true},
		{"ChaCha20-Poly1305", kms.ChaCha20, true},
		{"AES128", "", false},
		{"aes", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := kms.ParseAlgorithm(tt.in)
			if !tt.ok {
				wantCode(t, err, kms.Invalid)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAlgorithm(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseIdentity(f *testing.F) {
	f.Add("h1:" + strings.Repeat("A", 43))
	f.Add("h1:" + strings.Repeat("_", 43))
	f.Add("h1:")
	f.Add("")
	f.Add("h1:" + strings.Repeat("A", 42) + "=")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := kms.ParseIdentity(s)
		if err != nil {
			if kms.ErrorCode(err) != kms.Invalid {
				t.Fatalf("ParseIdentity(%q) error code %d, want Invalid", s, kms.ErrorCode(err))
			}
			return
		}
		if string(id) != s || len(s) != 46 || !strings.HasPrefix(s, "h1:") {
			t.Fatalf("ParseIdentity(%q) accepted a non-canonical identity", s)
		}
	})
}
