package kms_test

import (
	"context"
	"testing"

	"github.com/minkms/minkms/kms"
)

// TestAuthorizeNode: metrics:read is for cluster admins and for users whose
// policy allows it; a key policy, an enclave admin or a deny do not grant it.
func TestAuthorizeNode(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustPolicy(t, "default", "monitoring", kms.Policy{Allow: map[kms.Action][]string{kms.ActionMetricsRead: {"*"}}})
	e.MustPolicy(t, "default", "keys", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"*"}}})
	e.MustPolicy(t, "default", "denied", kms.Policy{
		Allow: map[kms.Action][]string{"*": {"*"}},
		Deny:  map[kms.Action][]string{kms.ActionMetricsRead: {"*"}},
	})
	for _, tt := range []struct {
		name   string
		caller kms.Caller
		want   error
	}{
		{"ClusterAdmin", e.admin, nil},
		{"Monitoring", e.MustUser(t, "default", "prometheus", false, "monitoring"), nil},
		{"KeyUser", e.MustUser(t, "default", "app", false, "keys"), kms.ErrNotAllowed},
		{"Denied", e.MustUser(t, "default", "denied", false, "denied"), kms.ErrNotAllowed},
		{"EnclaveAdmin", e.MustUser(t, "default", "eadmin", true, ""), kms.ErrNotAllowed},
		{"Unknown", kms.Caller{}, kms.ErrNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, e.svc.AuthorizeNode(ctx, tt.caller, kms.ActionMetricsRead, "n1"), tt.want)
		})
	}
	t.Run("KeyActionIsNoNodeAction", func(t *testing.T) {
		u := e.MustUser(t, "default", "app2", false, "keys")
		wantErr(t, e.svc.AuthorizeNode(ctx, u, kms.ActionKeyList, "n1"), kms.ErrNotAllowed)
	})
}
