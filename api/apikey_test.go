package api_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// MustGenerateAPIKey returns a new API key or fails the test.
func MustGenerateAPIKey(tb testing.TB) *api.APIKey {
	tb.Helper()
	k, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatalf("GenerateAPIKey: %v", err)
	}
	return k
}

func TestAPIKeyRoundTrip(t *testing.T) {
	k := MustGenerateAPIKey(t)
	s := k.String()
	if !strings.HasPrefix(s, "k1:") {
		t.Fatalf("String() = %q..., want prefix k1:", s[:3])
	}
	parsed, err := api.ParseAPIKey(" " + s + "\n")
	if err != nil {
		t.Fatalf("ParseAPIKey(String()): %v", err)
	}
	if parsed.String() != s {
		t.Error("ParseAPIKey(k.String()).String() differs from k.String()")
	}
	if parsed.Identity() != k.Identity() {
		t.Errorf("identity after round trip = %s, want %s", parsed.Identity(), k.Identity())
	}
	if other := MustGenerateAPIKey(t); other.Identity() == k.Identity() {
		t.Error("two generated keys have the same identity")
	}
}

func TestAPIKeyIdentity(t *testing.T) {
	// A fixed key pins the identity format: a change breaks every
	// identity that servers have stored.
	const keyText = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	k, err := api.ParseAPIKey(keyText)
	if err != nil {
		t.Fatal(err)
	}
	id := k.Identity()
	if !strings.HasPrefix(id, "h1:") || len(id) != len("h1:")+43 || strings.ContainsAny(id, "+/=") {
		t.Errorf("Identity() = %q, want h1: and 43 base64url characters", id)
	}
	if id != wantFixedIdentity {
		t.Errorf("Identity() = %s, want %s", id, wantFixedIdentity)
	}
}

// wantFixedIdentity is the identity of the key in TestAPIKeyIdentity, as
// computed independently with openssl (pkey -pubout, sha256, base64url).
const wantFixedIdentity = "h1:oFCDfYUHBYLM9zlLCYiEfMMSy4glm4lImfbyOc8XkaU"

func TestAPIKeyCertificate(t *testing.T) {
	k := MustGenerateAPIKey(t)
	cert, err := k.Certificate()
	if err != nil {
		t.Fatalf("Certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	t.Run("Identity", func(t *testing.T) {
		if got := api.IdentityOf(leaf); got != k.Identity() {
			t.Errorf("IdentityOf(cert) = %s, want %s", got, k.Identity())
		}
		if leaf.Subject.CommonName != k.Identity() {
			t.Errorf("CN = %q, want the identity %s", leaf.Subject.CommonName, k.Identity())
		}
	})
	t.Run("ClientAuth", func(t *testing.T) {
		if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("ExtKeyUsage = %v, want client auth only", leaf.ExtKeyUsage)
		}
		if leaf.IsCA {
			t.Error("the certificate is a CA")
		}
		if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
			t.Errorf("not self-signed: %v", err)
		}
	})
	t.Run("Validity", func(t *testing.T) {
		now := time.Now()
		if !leaf.NotBefore.Before(now.Add(-4*time.Minute)) || leaf.NotBefore.Before(now.Add(-6*time.Minute)) {
			t.Errorf("NotBefore = %v, want about 5 minutes ago", leaf.NotBefore)
		}
		if d := leaf.NotAfter.Sub(now); d < 89*24*time.Hour || d > 90*24*time.Hour+time.Minute {
			t.Errorf("NotAfter is %v from now, want 90 days", d)
		}
	})
}

func TestParseAPIKeyErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"Empty", "", "does not start with"},
		{"NoPrefix", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "does not start with"},
		{"WrongPrefix", "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "does not start with"},
		{"RootKey", "r1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "does not start with"},
		{"Padded", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "not unpadded base64url"},
		{"StdBase64", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+/", "not unpadded base64url"},
		{"StrayBits", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", "not unpadded base64url"},
		{"LineBreak", "k1:AAECAwQFBgcICQoLDA0ODxAREhMU\nFRYXGBkaGxwdHh8", "not unpadded base64url"},
		{"TooShort", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "holds 30 bytes, want 32"},
		{"TooLong", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ", "holds 34 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := api.ParseAPIKey(tt.input)
			if err == nil {
				t.Fatal("ParseAPIKey succeeded, want an error")
			}
			if !errors.Is(err, api.ErrInvalidAPIKey) {
				t.Errorf("error %q does not wrap ErrInvalidAPIKey", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if secret := strings.TrimPrefix(tt.input, "k1:"); len(secret) > 8 && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the key text", err)
			}
		})
	}
}

func FuzzParseAPIKey(f *testing.F) {
	f.Add("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	f.Add("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9")
	f.Add("k1:")
	f.Add("k1:====")
	f.Add("h1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	f.Add(" \tk1:_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_\n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := api.ParseAPIKey(s)
		if err != nil {
			if !errors.Is(err, api.ErrInvalidAPIKey) {
				t.Fatalf("error %q does not wrap ErrInvalidAPIKey", err)
			}
			if secret := strings.TrimPrefix(strings.TrimSpace(s), "k1:"); len(secret) > 8 && strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q repeats the key text", err)
			}
			return
		}
		again, err := api.ParseAPIKey(k.String())
		if err != nil {
			t.Fatalf("ParseAPIKey(k.String()): %v", err)
		}
		if again.String() != k.String() || again.Identity() != k.Identity() {
			t.Fatal("the key changed in a round trip")
		}
	})
}
