package idproof_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/idproof"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func identityOf(t *testing.T, s crypto.Signer) string {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return idproof.IdentityOf(spki)
}

func signers(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"Ed25519": ed, "P-256": p256, "P-384": p384, "RSA-2048": r}
}

func TestSignVerify(t *testing.T) {
	for name, s := range signers(t) {
		t.Run(name, func(t *testing.T) {
			tok, err := idproof.Sign(s, "c-1", "tenant", now, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok, idproof.Prefix) {
				t.Fatalf("token %q lacks the prefix", tok)
			}
			id := identityOf(t, s)
			if err := idproof.Verify(tok, "c-1", "tenant", id, now.Add(59*time.Minute)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			c, _ := idproof.Parse(tok)
			if want := now.Add(idproof.DefaultLifetime); !c.Expires.Equal(want) {
				t.Errorf("expires %s, want %s", c.Expires, want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	id := identityOf(t, key)
	tok, err := idproof.Sign(key, "c-1", "tenant", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _ := idproof.Sign(other, "c-1", "tenant", now, time.Hour)

	// resign builds a token of key over a payload changed by edit.
	resign := func(edit func(map[string]any), signer crypto.Signer) string {
		body, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(strings.Split(tok, ".")[0], idproof.Prefix))
		var m map[string]any
		json.Unmarshal(body, &m)
		edit(m)
		body, _ = json.Marshal(m)
		sig, _ := signer.Sign(rand.Reader, append([]byte("minkms identity proof v1\x00"), body...), crypto.Hash(0))
		return idproof.Prefix + base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	body, sig, _ := strings.Cut(tok, ".")
	flipped := []byte(sig)
	flipped[3] ^= 1
	if flipped[3] == '.' {
		flipped[3] = 'A'
	}
	otherBody, _, _ := strings.Cut(otherTok, ".")
	otherSPKI, _ := x509.MarshalPKIXPublicKey(other.Public())

	tests := []struct {
		name, token, cluster, enclave, identity string
		at                                      time.Time
		why                                     string
	}{
		{"WrongCluster", tok, "c-2", "tenant", id, now, "cluster"},
		{"NoCluster", tok, "", "tenant", id, now, "cluster"},
		{"WrongEnclave", tok, "c-1", "other", id, now, "enclave"},
		{"WrongIdentity", tok, "c-1", "tenant", identityOf(t, other), now, "identity"},
		{"Expired", tok, "c-1", "tenant", id, now.Add(time.Hour), "expired"},
		{"IssuedInTheFuture", tok, "c-1", "tenant", id, now.Add(-time.Hour), "future"},
		{"BadSignature", string(flipped), "c-1", "tenant", id, now, ""},
		{"TamperedSignature", body + "." + string(flipped[:len(flipped)-4]), "c-1", "tenant", id, now, ""},
		{"SignatureOfAnother", otherBody + "." + sig, "c-1", "tenant", identityOf(t, other), now, "signature"},
		{"TamperedEnclave", resign(func(m map[string]any) { m["enclave"] = "x" }, other), "c-1", "x", id, now, "signature"},
		{"KeyNotTheIdentitys", resign(func(m map[string]any) { m["public_key"] = otherSPKI }, other), "c-1", "tenant", id, now, "public key"},
		{"TooLong", resign(func(m map[string]any) { m["expires"] = now.Add(25 * time.Hour).Unix() }, key), "c-1", "tenant", id, now, "lifetime"},
		{"UnknownField", resign(func(m map[string]any) { m["x"] = 1 }, key), "c-1", "tenant", id, now, "JSON"},
		{"MissingField", resign(func(m map[string]any) { delete(m, "enclave") }, key), "c-1", "", id, now, "missing"},
		{"NoPrefix", strings.TrimPrefix(tok, idproof.Prefix), "c-1", "tenant", id, now, "start"},
		{"NoSignature", body, "c-1", "tenant", id, now, "no signature"},
		{"Garbage", "p1:!!!.!!!", "c-1", "tenant", id, now, "base64url"},
		{"Huge", idproof.Prefix + strings.Repeat("A", idproof.MaxLen+1), "c-1", "tenant", id, now, "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := idproof.Verify(tt.token, tt.cluster, tt.enclave, tt.identity, tt.at)
			if !errors.Is(err, idproof.ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("Verify = %v, want a reason with %q", err, tt.why)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := idproof.Sign(key, "c-1", "e", now, 25*time.Hour); err == nil {
		t.Error("a 25h lifetime was accepted")
	}
	if _, err := idproof.Sign(key, "", "e", now, time.Hour); err == nil {
		t.Error("an empty cluster id was accepted")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := idproof.Sign(p224, "c-1", "e", now, time.Hour); err == nil {
		t.Error("a P-224 key was accepted")
	}
}
