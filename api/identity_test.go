package api_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestHexIdentity: KES's hex identity of a key and its "h1:" identity
// convert into each other.
func TestHexIdentity(t *testing.T) {
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	kes := hex.EncodeToString(sum[:])
	if got := api.CanonicalIdentity(kes); got != key.Identity() {
		t.Errorf("CanonicalIdentity(%s) = %s, want %s", kes, got, key.Identity())
	}
	if got := api.HexIdentity(key.Identity()); got != kes {
		t.Errorf("HexIdentity(%s) = %s, want %s", key.Identity(), got, kes)
	}
	if got := api.CanonicalIdentity("not-an-identity"); got != "not-an-identity" {
		t.Errorf("CanonicalIdentity changed %q", got)
	}
}
