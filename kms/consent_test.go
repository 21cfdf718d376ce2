package kms_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/idproof"
	"github.com/minkms/minkms/kms"
)

// TestIdentitySquatting: binding an identity to an enclave needs a cluster
// admin or the consent of the identity's key holder, and tells an enclave
// admin nothing about identities in other enclaves.
func TestIdentitySquatting(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustEnclave(t, "mallory")
	e.MustEnclave(t, "victim")
	mallory := e.MustUser(t, "mallory", "mallory-admin", true, "")

	t.Run("EnclaveAdminWithoutProof", func(t *testing.T) {
		id, _ := MustHolder(t)
		_, err := e.svc.CreateIdentity(ctx, mallory, "mallory", id, true, "", "")
		wantErr(t, err, kms.ErrNotAllowed)
		if _, err := e.svc.Caller(ctx, id); err == nil {
			t.Fatal("the identity was bound without its holder's consent")
		}
		// It stays free for its holder's choice.
		_, err = e.svc.CreateIdentity(ctx, e.admin, "victim", id, false, "", "")
		wantCode(t, err, kms.Invalid) // a user needs a policy: it got that far
	})

	t.Run("ClusterAdminWithoutProof", func(t *testing.T) {
		id, _ := MustHolder(t)
		_, err := e.svc.CreateIdentity(ctx, e.admin, "victim", id, true, "", "")
		wantErr(t, err, nil)
		if c := MustCaller(t, e.svc, id); c.Enclave != "victim" {
			t.Fatalf("Caller = %+v", c)
		}
	})

	t.Run("EnclaveAdminWithProof", func(t *testing.T) {
		id, key := MustHolder(t)
		info, err := e.svc.CreateIdentity(ctx, mallory, "mallory", id, true, "", MustProof(t, key, "mallory"))
		wantErr(t, err, nil)
		if info.Enclave != "mallory" || info.CreatedBy != mallory.Identity {
			t.Fatalf("CreateIdentity = %+v", info)
		}
		if c := MustCaller(t, e.svc, id); c.Enclave != "mallory" || !c.Admin {
			t.Fatalf("Caller = %+v", c)
		}
	})

	t.Run("ECDSAKey", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(key.Public())
		id := kms.Identity(idproof.IdentityOf(spki))
		_, err := e.svc.CreateIdentity(ctx, mallory, "mallory", id, true, "", MustProof(t, key, "mallory"))
		wantErr(t, err, nil)
	})

	t.Run("InvalidProofs", func(t *testing.T) {
		id, key := MustHolder(t)
		other, otherKey := MustHolder(t)
		good := MustProof(t, key, "mallory")
		tampered := []byte(good)
		i := strings.IndexByte(good, '.') - 5
		tampered[i] ^= 0x01
		otherCluster, _ := idproof.Sign(key, "c-other", "mallory", testNow, time.Hour)
		expired, _ := idproof.Sign(key, testClusterID, "mallory", testNow.Add(-2*time.Hour), time.Hour)

		tests := []struct {
			name   string
			caller kms.Caller
			id     kms.Identity
			proof  string
		}{
			{"OtherEnclave", mallory, id, MustProof(t, key, "victim")},
			{"OtherCluster", mallory, id, otherCluster},
			{"OtherIdentity", mallory, other, good},
			{"ProofOfAnotherKey", mallory, id, MustProof(t, otherKey, "mallory")},
			{"Expired", mallory, id, expired},
			{"Tampered", mallory, id, string(tampered)},
			{"Garbage", mallory, id, "p1:xyz"},
			{"ClusterAdminWithBadProof", e.admin, id, MustProof(t, key, "victim")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.CreateIdentity(ctx, tt.caller, "mallory", tt.id, true, "", tt.proof)
				wantErr(t, err, kms.ErrInvalidProof)
				wantCode(t, err, kms.Invalid)
				if got := kms.Message(err); got != "invalid identity proof" {
					t.Errorf("message %q, want only %q", got, "invalid identity proof")
				}
				if _, err := e.svc.Caller(ctx, tt.id); err == nil {
					t.Fatal("the identity was bound")
				}
			})
		}
	})

	t.Run("NoClusterIDYet", func(t *testing.T) {
		e := MustEnv(t, func(o *kms.Options) { o.ClusterID = nil })
		e.MustEnclave(t, "m")
		ea := e.MustUser(t, "m", "m-admin", true, "")
		id, key := MustHolder(t)
		_, err := e.svc.CreateIdentity(ctx, ea, "m", id, true, "", MustProof(t, key, "m"))
		wantErr(t, err, kms.ErrInvalidProof)
	})

	t.Run("NoExistenceLeak", func(t *testing.T) {
		// An identity bound in victim, with a proof for mallory from its
		// holder: mallory's admin gets what it gets without a proof.
		taken, key := MustHolder(t)
		_, err := e.svc.CreateIdentity(ctx, e.admin, "victim", taken, true, "", "")
		wantErr(t, err, nil)
		free, _ := MustHolder(t)

		_, takenErr := e.svc.CreateIdentity(ctx, mallory, "mallory", taken, true, "", MustProof(t, key, "mallory"))
		_, noProofErr := e.svc.CreateIdentity(ctx, mallory, "mallory", free, true, "", "")
		_, clusterAdminErr := e.svc.CreateIdentity(ctx, mallory, "mallory", e.admin.Identity, true, "", "")
		for name, err := range map[string]error{"taken elsewhere": takenErr, "no proof": noProofErr, "a cluster admin": clusterAdminErr} {
			if kms.ErrorCode(err) != kms.Forbidden || kms.Message(err) != kms.ErrNotAllowed.Message {
				t.Errorf("%s: %v (code %d), want exactly %q", name, err, kms.ErrorCode(err), kms.ErrNotAllowed.Message)
			}
		}
		if c := MustCaller(t, e.svc, taken); c.Enclave != "victim" {
			t.Fatalf("the identity moved: %+v", c)
		}

		// A cluster admin is told precisely.
		_, err = e.svc.CreateIdentity(ctx, e.admin, "mallory", taken, true, "", "")
		wantErr(t, err, kms.ErrIdentityExists)

		// In its own enclave an enclave admin sees the identity anyway.
		own, ownKey := MustHolder(t)
		proof := MustProof(t, ownKey, "mallory")
		_, err = e.svc.CreateIdentity(ctx, mallory, "mallory", own, true, "", proof)
		wantErr(t, err, nil)
		_, err = e.svc.CreateIdentity(ctx, mallory, "mallory", own, true, "", proof)
		wantErr(t, err, kms.ErrIdentityExists)
	})
}
