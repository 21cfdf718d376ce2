package integration_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestKESHexIdentities: KES's hex form of an identity, in the config's
// admins and given to "minkms identity add", names the client whose
// certificate has that key; both are stored and shown as "h1:".
func TestKESHexIdentities(t *testing.T) {
	hexAdmin, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	n := MustNewNode(t, NodeOptions{})
	cfg, err := os.ReadFile(n.Config)
	if err != nil {
		t.Fatal(err)
	}
	first := "admins:\n  - " + n.AdminKey.Identity() + "\n"
	if !strings.Contains(string(cfg), first) {
		t.Fatalf("config has no admins list:\n%s", cfg)
	}
	cfg = []byte(strings.Replace(string(cfg), first, first+"  - "+api.HexIdentity(hexAdmin.Identity())+"\n", 1))
	if err := os.WriteFile(n.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	n.MustStart()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("Config", func(t *testing.T) {
		self, err := n.Client(hexAdmin).DescribeSelf(ctx)
		if err != nil {
			t.Fatalf("DescribeSelf as the hex admin: %v", err)
		}
		if !self.ClusterAdmin || self.Identity != hexAdmin.Identity() {
			t.Errorf("self = %+v; want the cluster admin %s", self.IdentityInfo, hexAdmin.Identity())
		}
	})

	t.Run("CLI", func(t *testing.T) {
		app, err := api.GenerateAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		kes := api.HexIdentity(app.Identity())
		var info api.IdentityInfo
		mustJSON(t, n.MustCLI(n.AdminKey, "identity", "add", kes, "--admin", "--json"), &info)
		if info.Identity != app.Identity() {
			t.Errorf("identity add %s stored %q, want %q", kes, info.Identity, app.Identity())
		}
		self, err := n.Client(app).DescribeSelf(ctx)
		if err != nil {
			t.Fatalf("DescribeSelf as the identity added in hex: %v", err)
		}
		if self.Identity != app.Identity() || !self.Admin {
			t.Errorf("self = %+v", self.IdentityInfo)
		}
		out := n.MustCLI(n.AdminKey, "identity", "stat", kes, "--json")
		mustJSON(t, out, &info)
		if info.Identity != app.Identity() {
			t.Errorf("identity stat %s = %q", kes, info.Identity)
		}
		n.MustCLI(n.AdminKey, "identity", "rm", kes)
		if _, err := n.Client(app).DescribeSelf(ctx); err == nil {
			t.Error("the removed identity still gets in")
		}
	})
}

// TestKESPolicyImport: a KES policy file imported by a cluster admin
// becomes the policy it means, and its hex identity is let in with it: the
// client may generate data keys under the allowed names and not under the
// denied ones.
func TestKESPolicyImport(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	app, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kes.yml")
	policy := "policy:\n  minio:\n    allow:\n    - /v1/key/create/minio-*\n    - /v1/key/generate/minio-*\n    - /v1/key/decrypt/minio-*\n    - /v1/status\n" +
		"    deny:\n    - /v1/key/generate/minio-internal*\n    identities:\n    - " + api.HexIdentity(app.Identity()) + "\n"
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	out := n.MustCLI(n.AdminKey, "policy", "import-kes", file)
	if !strings.Contains(out, "Added identity "+app.Identity()) {
		t.Errorf("import-kes printed %q; want the identity added", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.Client(app).Enclave("default")
	if _, err := c.CreateKey(ctx, "minio-1", nil); err != nil {
		t.Fatalf("create minio-1: %v", err)
	}
	if _, err := c.GenerateKey(ctx, "minio-1", nil, 0); err != nil {
		t.Errorf("generate under minio-*: %v", err)
	}
	if _, err := n.Client(app).Status(ctx); err != nil {
		t.Errorf("status: %v", err)
	}
	if _, err := n.Client(n.AdminKey).Enclave("default").CreateKey(ctx, "minio-internal-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateKey(ctx, "minio-internal-1", nil, 0); !errors.Is(err, api.ErrNotAllowed) {
		t.Errorf("generate under the denied minio-internal*: %v, want %v", err, api.ErrNotAllowed)
	}
	if _, err := c.CreateKey(ctx, "other", nil); !errors.Is(err, api.ErrNotAllowed) {
		t.Errorf("create outside minio-*: %v, want %v", err, api.ErrNotAllowed)
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("policy:\n  p:\n    allow: [/v1/identity/list/*]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := n.CLI(n.AdminKey, "policy", "import-kes", bad); r.Code == 0 || !strings.Contains(r.Stderr, "/v1/identity/list/*") {
		t.Errorf("exit %d, stderr %q; want the path refused by name", r.Code, r.Stderr)
	}
}
