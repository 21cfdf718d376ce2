package kms_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/storage/kv"
)

func TestEnclaves(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	info, err := e.svc.CreateEnclave(ctx, e.admin, "team")
	wantErr(t, err, nil)
	if info.Name != "team" || info.CreatedBy != e.admin.Identity || !info.CreatedAt.Equal(testNow) {
		t.Fatalf("CreateEnclave = %+v", info)
	}
	_, err = e.svc.CreateEnclave(ctx, e.admin, "team")
	wantErr(t, err, kms.ErrEnclaveExists)
	_, err = e.svc.CreateEnclave(ctx, e.admin, "a/b")
	wantCode(t, err, kms.Invalid)

	d, err := e.svc.DescribeEnclave(ctx, e.admin, "team")
	if err != nil || d != info {
		t.Fatalf("DescribeEnclave = %+v, %v; want %+v", d, err, info)
	}
	p, err := e.svc.ListEnclaves(ctx, e.admin, kms.ListOptions{})
	if err != nil || len(p.Names) != 2 || p.Names[0] != "default" || p.Names[1] != "team" {
		t.Fatalf("ListEnclaves = %+v, %v", p, err)
	}

	e.MustKey(t, "team", "k")
	e.MustPolicy(t, "team", "p", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"*"}}})
	member := e.MustUser(t, "team", "member", false, "p")

	t.Run("default cannot be deleted", func(t *testing.T) {
		wantCode(t, e.svc.DeleteEnclave(ctx, e.admin, "default"), kms.Invalid)
	})
	t.Run("delete removes everything", func(t *testing.T) {
		wantErr(t, e.svc.DeleteEnclave(ctx, e.admin, "team"), nil)
		wantErr(t, e.svc.DeleteEnclave(ctx, e.admin, "team"), kms.ErrEnclaveNotFound)
		_, err := e.svc.Caller(ctx, member.Identity)
		wantErr(t, err, kms.ErrNotAllowed)
		if n := e.state.Len("identities"); n != 0 {
			t.Fatalf("%d identity index entries left", n)
		}
		// Recreated, the enclave is empty and the identity is free again.
		e.MustEnclave(t, "team")
		_, err = e.svc.DescribeKey(ctx, e.admin, "team", "k")
		wantErr(t, err, kms.ErrKeyNotFound)
		_, err = e.svc.DescribePolicy(ctx, e.admin, "team", "p")
		wantErr(t, err, kms.ErrPolicyNotFound)
		e.MustUser(t, "default", "member", true, "")
	})
}

func TestIdentities(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustEnclave(t, "e2")
	e.MustPolicy(t, "default", "p", kms.Policy{Allow: map[kms.Action][]string{kms.ActionKeyEncrypt: {"*"}}})
	alice := MustIdentity(t, "alice")

	info, err := e.svc.CreateIdentity(ctx, e.admin, "default", alice, false, "p", "")
	wantErr(t, err, nil)
	if info.Identity != alice || info.Enclave != "default" || info.Admin || info.Policy != "p" || info.CreatedBy != e.admin.Identity {
		t.Fatalf("CreateIdentity = %+v", info)
	}
	c := MustCaller(t, e.svc, alice)
	if c != (kms.Caller{Identity: alice, Enclave: "default", Policy: "p"}) {
		t.Fatalf("Caller = %+v", c)
	}

	tests := []struct {
		name    string
		enclave string
		id      kms.Identity
		admin   bool
		policy  string
		want    error
		code    kms.Code
	}{
		{"again", "default", alice, false, "p", kms.ErrIdentityExists, kms.Exists},
		{"in another enclave", "e2", alice, true, "", kms.ErrIdentityExists, kms.Exists},
		{"cluster admin", "default", e.admin.Identity, true, "", kms.ErrIdentityExists, kms.Exists},
		{"missing policy", "default", MustIdentity(t, "bob"), false, "none", kms.ErrPolicyNotFound, kms.NotFound},
		{"policy of another enclave", "e2", MustIdentity(t, "bob"), false, "p", kms.ErrPolicyNotFound, kms.NotFound},
		{"user without policy", "default", MustIdentity(t, "bob"), false, "", nil, kms.Invalid},
		{"bad identity", "default", "h1:short", true, "", nil, kms.Invalid},
		{"bad policy name", "default", MustIdentity(t, "bob"), false, "../p", nil, kms.Invalid},
		{"missing enclave", "nope", MustIdentity(t, "bob"), true, "", kms.ErrEnclaveNotFound, kms.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.CreateIdentity(ctx, e.admin, tt.enclave, tt.id, tt.admin, tt.policy, "")
			if tt.want != nil {
				wantErr(t, err, tt.want)
			}
			wantCode(t, err, tt.code)
		})
	}

	t.Run("describe and list", func(t *testing.T) {
		d, err := e.svc.DescribeIdentity(ctx, e.admin, "default", alice)
		if err != nil || d != info {
			t.Fatalf("DescribeIdentity = %+v, %v; want %+v", d, err, info)
		}
		_, err = e.svc.DescribeIdentity(ctx, e.admin, "e2", alice)
		wantErr(t, err, kms.ErrIdentityNotFound)
		p, err := e.svc.ListIdentities(ctx, e.admin, "default", kms.ListOptions{})
		if err != nil || len(p.Names) != 1 || p.Names[0] != string(alice) {
			t.Fatalf("ListIdentities = %+v, %v", p, err)
		}
	})
	t.Run("self", func(t *testing.T) {
		si, pol, err := e.svc.Self(ctx, c)
		if err != nil || si != info || pol == nil || !pol.Allows(kms.ActionKeyEncrypt, "x") {
			t.Fatalf("Self = %+v, %+v, %v", si, pol, err)
		}
		si, pol, err = e.svc.Self(ctx, e.admin)
		if err != nil || !si.ClusterAdmin || !si.Admin || pol != nil {
			t.Fatalf("Self(cluster admin) = %+v, %+v, %v", si, pol, err)
		}
	})
	t.Run("enclave admin manages its enclave", func(t *testing.T) {
		ea := e.MustUser(t, "e2", "e2admin", true, "")
		bob, bobKey := MustHolder(t)
		_, err := e.svc.CreateIdentity(ctx, ea, "e2", bob, true, "", MustProof(t, bobKey, "e2"))
		wantErr(t, err, nil)
		carol, carolKey := MustHolder(t)
		_, err = e.svc.CreateIdentity(ctx, ea, "default", carol, true, "", MustProof(t, carolKey, "default"))
		wantErr(t, err, kms.ErrNotAllowed)
		wantErr(t, e.svc.DeleteIdentity(ctx, ea, "e2", bob), nil)
	})
	t.Run("delete", func(t *testing.T) {
		wantErr(t, e.svc.DeleteIdentity(ctx, e.admin, "default", alice), nil)
		wantErr(t, e.svc.DeleteIdentity(ctx, e.admin, "default", alice), kms.ErrIdentityNotFound)
		_, err := e.svc.Caller(ctx, alice)
		wantErr(t, err, kms.ErrNotAllowed)
		_, _, err = e.svc.Self(ctx, c)
		wantErr(t, err, kms.ErrNotAllowed)
		// Free to be assigned again, elsewhere.
		e.MustUser(t, "e2", "alice", true, "")
	})
}

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	p1 := kms.Policy{Allow: map[kms.Action][]string{"key:*": {"b", "a"}}}
	info, err := e.svc.CreatePolicy(ctx, e.admin, "default", "p", p1, false)
	wantErr(t, err, nil)
	if info.Name != "p" || info.Enclave != "default" || info.Policy.Allow["key:*"][0] != "a" {
		t.Fatalf("CreatePolicy = %+v", info)
	}
	_, err = e.svc.CreatePolicy(ctx, e.admin, "default", "p", p1, false)
	wantErr(t, err, kms.ErrPolicyExists)
	_, err = e.svc.CreatePolicy(ctx, e.admin, "default", "p", kms.Policy{Deny: map[kms.Action][]string{"key:*": {"*"}}}, true)
	wantErr(t, err, nil)
	d, err := e.svc.DescribePolicy(ctx, e.admin, "default", "p")
	if err != nil || len(d.Policy.Allow) != 0 || len(d.Policy.Deny) != 1 {
		t.Fatalf("DescribePolicy after replace = %+v, %v", d, err)
	}
	_, err = e.svc.CreatePolicy(ctx, e.admin, "default", "bad", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"a/b"}}}, false)
	wantCode(t, err, kms.Invalid)
	_, err = e.svc.CreatePolicy(ctx, e.admin, "nope", "p", p1, false)
	wantErr(t, err, kms.ErrEnclaveNotFound)

	pg, err := e.svc.ListPolicies(ctx, e.admin, "default", kms.ListOptions{})
	if err != nil || len(pg.Names) != 1 || pg.Names[0] != "p" {
		t.Fatalf("ListPolicies = %+v, %v", pg, err)
	}
	wantErr(t, e.svc.DeletePolicy(ctx, e.admin, "default", "p"), nil)
	wantErr(t, e.svc.DeletePolicy(ctx, e.admin, "default", "p"), kms.ErrPolicyNotFound)
	_, err = e.svc.DescribePolicy(ctx, e.admin, "default", "p")
	wantErr(t, err, kms.ErrPolicyNotFound)
}

func TestInitConcurrent(t *testing.T) {
	st := kmstest.New(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = kms.New(st, st, kms.Options{}).Init(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		wantErr(t, err, nil)
	}
	if n := st.Len("enclaves"); n != 1 {
		t.Fatalf("%d enclaves after Init, want 1", n)
	}
}

// brokenReader fails every read with a cause that must not reach callers.
type brokenReader struct{ kms.Reader }

var errDisk = errors.New("disk on fire: key material 0xdeadbeef")

func (brokenReader) Get(context.Context, string, string) (kv.Entry, error) {
	return kv.Entry{}, errDisk
}

// codedConflict fails every change with a failed precondition of code.
type codedConflict struct {
	kms.Proposer
	code string
}

func (p codedConflict) Propose(context.Context, kv.Change) error {
	return &kv.ConditionError{Index: 0, Code: p.code}
}

func TestStateErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("no leader", func(t *testing.T) {
		e := MustEnv(t)
		e.state.SetUnavailable(true)
		_, err := e.svc.CreateKey(ctx, e.admin, "default", "k", kms.AES256)
		wantErr(t, err, kms.ErrNoLeader)
		wantCode(t, err, kms.Unavailable)
	})
	t.Run("precondition codes", func(t *testing.T) {
		e := MustEnv(t)
		user := e.MustUser(t, "default", "app", true, "")
		for _, tc := range []struct {
			code   string
			caller kms.Caller
			want   error
		}{
			{"key-exists", e.admin, kms.ErrKeyExists},
			{"enclave-not-found", e.admin, kms.ErrEnclaveNotFound},
			{"enclave-not-found", user, kms.ErrNotAllowed}, // a missing enclave is hidden from all but cluster admins
			{"policy-not-found", e.admin, kms.ErrPolicyNotFound},
		} {
			svc := kms.New(e.state, codedConflict{e.state, tc.code}, kms.Options{Admins: []kms.Identity{MustIdentity(t, "root")}})
			_, err := svc.CreateKey(ctx, tc.caller, "default", "k", kms.AES256)
			wantErr(t, err, tc.want)
		}
	})
	t.Run("unknown precondition code", func(t *testing.T) {
		e := MustEnv(t)
		svc := kms.New(e.state, codedConflict{e.state, "no-such-code"}, kms.Options{Admins: []kms.Identity{MustIdentity(t, "root")}})
		_, err := svc.CreateKey(ctx, e.admin, "default", "k", kms.AES256)
		wantCode(t, err, kms.Internal)
		var ce *kv.ConditionError
		if !errors.As(err, &ce) || ce.Code != "no-such-code" {
			t.Errorf("error %v does not wrap the failed precondition for the log", err)
		}
	})
	t.Run("internal", func(t *testing.T) {
		st := kmstest.New(t)
		admin := MustIdentity(t, "root")
		svc := kms.New(brokenReader{st}, st, kms.Options{Admins: []kms.Identity{admin}})
		c := MustCaller(t, svc, admin)
		_, err := svc.DescribeKey(ctx, c, "default", "k")
		wantCode(t, err, kms.Internal)
		if !errors.Is(err, errDisk) {
			t.Fatalf("error %v does not wrap the cause", err)
		}
		if kms.Message(err) != "internal error" {
			t.Fatalf("Message = %q, want %q", kms.Message(err), "internal error")
		}
	})
}
