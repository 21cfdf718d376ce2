package integration_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestAccessControl shows a cluster admin, a user limited by a policy and an
// unknown certificate, each getting exactly what it may.
func TestAccessControl(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := ctxT(t)
	admin := n.Client(n.AdminKey)
	for _, name := range []string{"app-1", "app-2", "other"} {
		if err := admin.CreateKey(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	e := admin.Enclave("default")
	policy := &api.Policy{
		Allow: map[string][]string{
			"key:encrypt":  {"app-*"},
			"key:decrypt":  {"app-*"},
			"key:generate": {"app-*"},
		},
		Deny: map[string][]string{"key:decrypt": {"app-2"}},
	}
	if _, err := e.CreatePolicy(ctx, "app", policy, false); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if _, err := e.CreatePolicy(ctx, "app", policy, false); !errors.Is(err, api.ErrPolicyExists) {
		t.Fatalf("second CreatePolicy: got %v, want ErrPolicyExists", err)
	}
	userKey := MustAPIKey(t)
	if _, err := e.CreateIdentity(ctx, userKey.Identity(), &api.CreateIdentityRequest{Policy: "app"}); err != nil {
		t.Fatalf("CreateIdentity: %v", err)
	}
	user := n.Client(userKey)
	stranger := n.Client(MustAPIKey(t))

	ct1, err := user.Encrypt(ctx, "app-1", []byte("one"), nil)
	if err != nil {
		t.Fatalf("user encrypt app-1: %v", err)
	}
	if got, err := user.Decrypt(ctx, "app-1", ct1, nil); err != nil || string(got) != "one" {
		t.Fatalf("user decrypt app-1 = %q, %v", got, err)
	}
	ct2, err := user.Encrypt(ctx, "app-2", []byte("two"), nil)
	if err != nil {
		t.Fatalf("user encrypt app-2: %v", err)
	}

	forbidden := []struct {
		name string
		call func() error
	}{
		{"UserDecryptDenied", func() error { _, err := user.Decrypt(ctx, "app-2", ct2, nil); return err }},
		{"UserEncryptOtherKey", func() error { _, err := user.Encrypt(ctx, "other", []byte("x"), nil); return err }},
		{"UserCreateKey", func() error { return user.CreateKey(ctx, "app-3") }},
		{"UserDeleteKey", func() error { return user.DeleteKey(ctx, "app-1") }},
		{"UserCreateIdentity", func() error {
			_, err := user.Enclave("default").CreateIdentity(ctx, MustAPIKey(t).Identity(), &api.CreateIdentityRequest{Admin: true})
			return err
		}},
		{"StrangerEncrypt", func() error { _, err := stranger.Encrypt(ctx, "app-1", []byte("x"), nil); return err }},
		{"StrangerDescribe", func() error { _, err := stranger.DescribeKey(ctx, "app-1"); return err }},
		{"StrangerCreate", func() error { return stranger.CreateKey(ctx, "evil") }},
	}
	for _, tc := range forbidden {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || !errors.Is(err, api.ErrNotAllowed) {
				t.Fatalf("got %v, want 403 %q", err, api.ErrNotAllowed.Message)
			}
		})
	}

	// Nothing the refused calls tried happened.
	if _, err := admin.DescribeKey(ctx, "app-3"); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("app-3 exists after a refused create: %v", err)
	}
	if _, err := admin.DescribeKey(ctx, "app-1"); err != nil {
		t.Errorf("app-1 gone after a refused delete: %v", err)
	}
	if _, err := admin.DescribeKey(ctx, "evil"); !errors.Is(err, api.ErrKeyNotFound) {
		t.Errorf("evil exists after a refused create: %v", err)
	}

	self, err := user.DescribeSelf(ctx)
	if err != nil || self.Identity != userKey.Identity() || self.Admin || self.Policy != "app" {
		t.Fatalf("user DescribeSelf = %+v, %v", self, err)
	}
}
