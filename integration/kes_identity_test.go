package integration_test

import (
	"context"
	"os"
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
