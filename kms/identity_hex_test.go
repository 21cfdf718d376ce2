package kms_test

import (
	"context"
	"testing"

	"github.com/minkms/minkms/kms"
)

// TestHexIdentities: a cluster admin given in KES's hex form and an
// identity created from its hex form are the callers whose certificates
// have those keys; the identity is stored and shown as "h1:".
func TestHexIdentities(t *testing.T) {
	ctx := context.Background()
	root := MustIdentity(t, "hex-root")
	e := MustEnv(t, func(o *kms.Options) { o.Admins = append(o.Admins, kms.Identity(root.Hex())) })
	if c, err := e.svc.Caller(ctx, root); err != nil || !c.ClusterAdmin {
		t.Fatalf("Caller(%s) = %+v, %v; want the cluster admin named by its hex form", root, c, err)
	}

	app := MustIdentity(t, "hex-app")
	info, err := e.svc.CreateIdentity(ctx, e.admin, kms.DefaultEnclave, kms.Identity(app.Hex()), true, "", "")
	if err != nil {
		t.Fatalf("CreateIdentity(hex): %v", err)
	}
	if info.Identity != app {
		t.Errorf("CreateIdentity(hex) stored %q, want %q", info.Identity, app)
	}
	if c, err := e.svc.Caller(ctx, app); err != nil || c.Identity != app {
		t.Errorf("Caller(%s) = %+v, %v", app, c, err)
	}
	if d, err := e.svc.DescribeIdentity(ctx, e.admin, kms.DefaultEnclave, kms.Identity(app.Hex())); err != nil || d.Identity != app {
		t.Errorf("DescribeIdentity(hex) = %+v, %v", d, err)
	}
	if err := e.svc.DeleteIdentity(ctx, e.admin, kms.DefaultEnclave, kms.Identity(app.Hex())); err != nil {
		t.Errorf("DeleteIdentity(hex): %v", err)
	}
}
