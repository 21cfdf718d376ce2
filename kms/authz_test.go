package kms_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/minkms/minkms/kms"
)

// TestAuthorization checks every rule of authz.go for every kind of caller.
func TestAuthorization(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustEnclave(t, "e2")
	e.MustKey(t, "default", "app-1")
	e.MustKey(t, "default", "app-secret")
	e.MustKey(t, "e2", "app-1")
	e.MustPolicy(t, "default", "app", kms.Policy{
		Allow: map[kms.Action][]string{
			"key:*":              {"app-*"},
			kms.ActionPolicyList: {"*"}, // users never get non-key actions
		},
		Deny: map[kms.Action][]string{kms.ActionKeyDecrypt: {"app-secret"}},
	})
	e.MustPolicy(t, "default", "gone", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"*"}}})

	callers := map[string]kms.Caller{
		"cluster admin":  e.admin,
		"enclave admin":  e.MustUser(t, "default", "eadmin", true, ""),
		"other admin":    e.MustUser(t, "e2", "e2admin", true, ""),
		"user":           e.MustUser(t, "default", "user", false, "app"),
		"orphaned user":  e.MustUser(t, "default", "orphan", false, "gone"),
		"unknown caller": {Identity: MustIdentity(t, "stranger"), Enclave: "default"},
	}
	if err := e.svc.DeletePolicy(ctx, e.admin, "default", "gone"); err != nil {
		t.Fatal(err)
	}
	ct, err := e.svc.Encrypt(ctx, e.admin, "default", "app-secret", []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}

	created := 0
	ops := map[string]func(c kms.Caller) error{
		"encrypt": func(c kms.Caller) error {
			_, err := e.svc.Encrypt(ctx, c, "default", "app-1", []byte("x"), nil)
			return err
		},
		"encrypt missing": func(c kms.Caller) error {
			_, err := e.svc.Encrypt(ctx, c, "default", "app-none", []byte("x"), nil)
			return err
		},
		"encrypt outside": func(c kms.Caller) error {
			_, err := e.svc.Encrypt(ctx, c, "default", "other", []byte("x"), nil)
			return err
		},
		"decrypt denied": func(c kms.Caller) error {
			_, err := e.svc.Decrypt(ctx, c, "default", "app-secret", ct, nil)
			return err
		},
		"describe":        func(c kms.Caller) error { _, err := e.svc.DescribeKey(ctx, c, "default", "app-1"); return err },
		"list keys":       func(c kms.Caller) error { _, err := e.svc.ListKeys(ctx, c, "default", kms.ListOptions{}); return err },
		"cross enclave":   func(c kms.Caller) error { _, err := e.svc.DescribeKey(ctx, c, "e2", "app-1"); return err },
		"missing enclave": func(c kms.Caller) error { _, err := e.svc.DescribeKey(ctx, c, "nope", "app-1"); return err },
		"list policies": func(c kms.Caller) error {
			_, err := e.svc.ListPolicies(ctx, c, "default", kms.ListOptions{})
			return err
		},
		"list identities": func(c kms.Caller) error {
			_, err := e.svc.ListIdentities(ctx, c, "default", kms.ListOptions{})
			return err
		},
		"describe enclave": func(c kms.Caller) error { _, err := e.svc.DescribeEnclave(ctx, c, "default"); return err },
		"list enclaves":    func(c kms.Caller) error { _, err := e.svc.ListEnclaves(ctx, c, kms.ListOptions{}); return err },
		"create enclave": func(c kms.Caller) error {
			created++
			_, err := e.svc.CreateEnclave(ctx, c, fmt.Sprintf("new-%d", created))
			return err
		},
		"delete enclave e2": func(c kms.Caller) error { return e.svc.DeleteEnclave(ctx, c, "nope") },
	}

	const (
		ok  = "ok"
		no  = "not allowed"
		nf  = "key not found"
		enf = "enclave not found"
		dec = "decrypt"
	)
	want := map[string]map[string]string{
		"cluster admin": {
			"encrypt": ok, "encrypt missing": nf, "encrypt outside": nf, "decrypt denied": ok, "describe": ok,
			"list keys": ok, "cross enclave": ok, "missing enclave": enf, "list policies": ok,
			"list identities": ok, "describe enclave": ok, "list enclaves": ok, "create enclave": ok,
			"delete enclave e2": enf,
		},
		"enclave admin": {
			"encrypt": ok, "encrypt missing": nf, "encrypt outside": nf, "decrypt denied": ok, "describe": ok,
			"list keys": ok, "cross enclave": no, "missing enclave": no, "list policies": ok,
			"list identities": ok, "describe enclave": ok, "list enclaves": no, "create enclave": no,
			"delete enclave e2": no,
		},
		"other admin": {
			"encrypt": no, "encrypt missing": no, "encrypt outside": no, "decrypt denied": no, "describe": no,
			"list keys": no, "cross enclave": ok, "missing enclave": no, "list policies": no,
			"list identities": no, "describe enclave": no, "list enclaves": no, "create enclave": no,
			"delete enclave e2": no,
		},
		"user": {
			"encrypt": ok, "encrypt missing": nf, "encrypt outside": no, "decrypt denied": no, "describe": ok,
			"list keys": ok, "cross enclave": no, "missing enclave": no, "list policies": no,
			"list identities": no, "describe enclave": no, "list enclaves": no, "create enclave": no,
			"delete enclave e2": no,
		},
		"orphaned user": {
			"encrypt": no, "encrypt missing": no, "encrypt outside": no, "decrypt denied": no, "describe": no,
			"list keys": no, "cross enclave": no, "missing enclave": no, "list policies": no,
			"list identities": no, "describe enclave": no, "list enclaves": no, "create enclave": no,
			"delete enclave e2": no,
		},
	}
	sentinel := map[string]error{no: kms.ErrNotAllowed, nf: kms.ErrKeyNotFound, enf: kms.ErrEnclaveNotFound, dec: kms.ErrDecrypt}
	for who, ops2 := range want {
		for op, outcome := range ops2 {
			t.Run(who+"/"+op, func(t *testing.T) {
				err := ops[op](callers[who])
				if outcome == ok {
					wantErr(t, err, nil)
					return
				}
				wantErr(t, err, sentinel[outcome])
			})
		}
	}
	t.Run("unknown caller", func(t *testing.T) {
		_, err := e.svc.Caller(ctx, callers["unknown caller"].Identity)
		wantErr(t, err, kms.ErrNotAllowed)
		_, err = e.svc.Caller(ctx, "garbage")
		wantErr(t, err, kms.ErrNotAllowed)
		_, err = e.svc.Caller(ctx, "")
		wantErr(t, err, kms.ErrNoIdentity)
		for op, run := range ops {
			if err := run(kms.Caller{}); err == nil {
				t.Errorf("%s allowed for the zero Caller", op)
			}
		}
	})
	t.Run("user cannot manage", func(t *testing.T) {
		u := callers["user"]
		_, err := e.svc.CreateIdentity(ctx, u, "default", MustIdentity(t, "x"), true, "", "")
		wantErr(t, err, kms.ErrNotAllowed)
		_, err = e.svc.CreatePolicy(ctx, u, "default", "p", kms.Policy{}, false)
		wantErr(t, err, kms.ErrNotAllowed)
	})
}
