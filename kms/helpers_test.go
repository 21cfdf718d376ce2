package kms_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/minkms/minkms/idproof"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
)

// env is a Service over an in-memory state with a cluster admin.
type env struct {
	svc   *kms.Service
	state *kmstest.State
	admin kms.Caller // cluster admin
}

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testClusterID is the cluster id of every MustEnv.
const testClusterID = "c-test"

// MustHolder returns a new Ed25519 key and its identity: a client that can
// make identity proofs.
func MustHolder(tb testing.TB) (kms.Identity, crypto.Signer) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	id, err := kms.ParseIdentity(idproof.IdentityOf(spki))
	if err != nil {
		tb.Fatal(err)
	}
	return id, priv
}

// MustProof returns a proof by key for enclave of the test cluster, issued
// at testNow for an hour.
func MustProof(tb testing.TB, key crypto.Signer, enclave string) string {
	tb.Helper()
	tok, err := idproof.Sign(key, testClusterID, enclave, testNow, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// MustIdentity returns a valid identity derived from seed.
func MustIdentity(tb testing.TB, seed string) kms.Identity {
	tb.Helper()
	sum := sha256.Sum256([]byte(seed))
	id, err := kms.ParseIdentity("h1:" + base64.RawURLEncoding.EncodeToString(sum[:]))
	if err != nil {
		tb.Fatalf("identity of %q: %v", seed, err)
	}
	return id
}

// MustEnv returns an initialised Service with the cluster admin "root".
func MustEnv(tb testing.TB, opts ...func(*kms.Options)) *env {
	tb.Helper()
	st := kmstest.New(tb)
	o := kms.Options{
		Admins:    []kms.Identity{MustIdentity(tb, "root")},
		Now:       func() time.Time { return testNow },
		ClusterID: func() string { return testClusterID },
		// Every test runs with the cache, kept current as the FSM does.
		CacheMaxEntries: kms.DefaultCacheMaxEntries,
	}
	for _, f := range opts {
		f(&o)
	}
	svc := kms.New(st, st, o)
	st.OnApply(svc.Invalidate)
	tb.Cleanup(svc.Close)
	if err := svc.Init(context.Background()); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	return &env{svc: svc, state: st, admin: MustCaller(tb, svc, MustIdentity(tb, "root"))}
}

// MustCaller resolves id.
func MustCaller(tb testing.TB, svc *kms.Service, id kms.Identity) kms.Caller {
	tb.Helper()
	c, err := svc.Caller(context.Background(), id)
	if err != nil {
		tb.Fatalf("Caller(%s): %v", id, err)
	}
	return c
}

// MustEnclave creates an enclave as the cluster admin.
func (e *env) MustEnclave(tb testing.TB, name string) {
	tb.Helper()
	if _, err := e.svc.CreateEnclave(context.Background(), e.admin, name); err != nil {
		tb.Fatalf("CreateEnclave(%s): %v", name, err)
	}
}

// MustKey creates an AES256 key as the cluster admin.
func (e *env) MustKey(tb testing.TB, enclave, name string) kms.KeyInfo {
	tb.Helper()
	ki, err := e.svc.CreateKey(context.Background(), e.admin, enclave, name, kms.AES256)
	if err != nil {
		tb.Fatalf("CreateKey(%s/%s): %v", enclave, name, err)
	}
	return ki
}

// MustPolicy stores a policy as the cluster admin.
func (e *env) MustPolicy(tb testing.TB, enclave, name string, p kms.Policy) {
	tb.Helper()
	if _, err := e.svc.CreatePolicy(context.Background(), e.admin, enclave, name, p, true); err != nil {
		tb.Fatalf("CreatePolicy(%s/%s): %v", enclave, name, err)
	}
}

// MustUser creates an identity from seed in enclave and returns its Caller.
func (e *env) MustUser(tb testing.TB, enclave, seed string, admin bool, policy string) kms.Caller {
	tb.Helper()
	id := MustIdentity(tb, seed)
	if _, err := e.svc.CreateIdentity(context.Background(), e.admin, enclave, id, admin, policy, ""); err != nil {
		tb.Fatalf("CreateIdentity(%s, %s): %v", enclave, seed, err)
	}
	return MustCaller(tb, e.svc, id)
}

// wantErr fails unless err is want (nil for success), by errors.Is.
func wantErr(tb testing.TB, err, want error) {
	tb.Helper()
	switch {
	case want == nil && err != nil:
		tb.Fatalf("error = %v, want none", err)
	case want != nil && !errors.Is(err, want):
		tb.Fatalf("error = %v, want %v", err, want)
	}
}

// wantCode fails unless err has code.
func wantCode(tb testing.TB, err error, code kms.Code) {
	tb.Helper()
	if err == nil || kms.ErrorCode(err) != code {
		tb.Fatalf("error = %v (code %d), want code %d", err, kms.ErrorCode(err), code)
	}
}
