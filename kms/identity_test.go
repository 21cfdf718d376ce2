package kms

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
)

// TestParseIdentityHex: KES's form of an identity, the SHA-256 of the
// SubjectPublicKeyInfo as 64 hex digits, parses to the "h1:" identity of the
// same certificate, and Hex gives it back.
func TestParseIdentityHex(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: spki}
	sum := sha256.Sum256(spki)
	kes := hex.EncodeToString(sum[:])

	want := IdentityOf(cert)
	for _, in := range []string{kes, strings.ToUpper(kes), string(want)} {
		got, err := ParseIdentity(in)
		if err != nil {
			t.Fatalf("ParseIdentity(%q): %v", in, err)
		}
		if got != want {
			t.Errorf("ParseIdentity(%q) = %q, want %q", in, got, want)
		}
	}
	if got := want.Hex(); got != kes {
		t.Errorf("Hex() = %q, want %q", got, kes)
	}
	for _, bad := range []string{kes[:63], kes + "0", strings.Repeat("g", 64), "h1:" + kes[:40]} {
		if _, err := ParseIdentity(bad); ErrorCode(err) != Invalid {
			t.Errorf("ParseIdentity(%q) = %v, want Invalid", bad, err)
		}
	}
}
