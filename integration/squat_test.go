package integration_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestIdentitySquattingCLI: an enclave admin cannot bind a client's
// identity to its enclave without the client's consent, nor learn whether
// it belongs to another enclave; with a proof the client made with
// "minkms identity proof" (from an API key or a certificate) it can.
func TestIdentitySquattingCLI(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := ctxT(t)
	root := n.AdminKey
	n.MustCLI(root, "enclave", "create", "tenant")
	n.MustCLI(root, "enclave", "create", "other")
	tenantAdmin := MustAPIKey(t)
	n.MustCLI(root, "identity", "add", tenantAdmin.Identity(), "--admin", "--enclave", "tenant")

	app := MustAPIKey(t)
	notAllowed := func(t *testing.T, res CLIResult) {
		t.Helper()
		if res.Code != 2 || !strings.Contains(res.Stderr, api.ErrNotAllowed.Message) {
			t.Fatalf("exit %d, stderr %q; want exit 2, %q", res.Code, res.Stderr, api.ErrNotAllowed.Message)
		}
	}
	unbound := func(t *testing.T, key *api.APIKey) {
		t.Helper()
		if _, err := n.Client(key).DescribeSelf(ctx); !errors.Is(err, api.ErrNotAllowed) {
			t.Fatalf("the identity is known: %v", err)
		}
	}

	t.Run("NoProof", func(t *testing.T) {
		res := n.CLI(tenantAdmin, "identity", "add", app.Identity(), "--admin", "--enclave", "tenant")
		notAllowed(t, res)
		if !strings.Contains(res.Stderr, "minkms identity proof") {
			t.Errorf("stderr %q does not say how to get a proof", res.Stderr)
		}
		unbound(t, app)
	})

	t.Run("ProofForAnotherEnclave", func(t *testing.T) {
		tok := strings.TrimSpace(n.MustCLI(app, "identity", "proof", "--enclave", "other"))
		res := n.CLI(tenantAdmin, "identity", "add", app.Identity(), "--admin", "--enclave", "tenant", "--proof", tok)
		if res.Code != 1 || !strings.Contains(res.Stderr, `for enclave "other"`) {
			t.Fatalf("exit %d, stderr %q; want the CLI to name the enclave", res.Code, res.Stderr)
		}
		// The server refuses it too, without saying why.
		_, err := n.Client(tenantAdmin).Enclave("tenant").CreateIdentity(ctx, app.Identity(), &api.CreateIdentityRequest{Admin: true, Proof: tok})
		if !errors.Is(err, api.ErrInvalidProof) {
			t.Fatalf("server: %v, want %v", err, api.ErrInvalidProof)
		}
		otherCluster, err := app.IdentityProof("c-another-cluster", "tenant", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, err = n.Client(tenantAdmin).Enclave("tenant").CreateIdentity(ctx, app.Identity(), &api.CreateIdentityRequest{Admin: true, Proof: otherCluster})
		if !errors.Is(err, api.ErrInvalidProof) {
			t.Fatalf("proof of another cluster: %v, want %v", err, api.ErrInvalidProof)
		}
		unbound(t, app)
	})

	t.Run("WithProof", func(t *testing.T) {
		// The key holder asks the server for the cluster id: it is not let
		// in yet, and needs no known identity for it.
		tok := strings.TrimSpace(n.MustCLI(app, "identity", "proof", "--enclave", "tenant", "--expires", "10m"))
		n.MustCLI(tenantAdmin, "identity", "add", app.Identity(), "--admin", "--enclave", "tenant", "--proof", tok)
		self, err := n.Client(app).DescribeSelf(ctx)
		if err != nil || self.Enclave != "tenant" {
			t.Fatalf("self = %+v, %v", self, err)
		}
	})

	t.Run("CertificateProof", func(t *testing.T) {
		certFile, keyFile := mustECDSACert(t)
		// The first line is the "h1:" form, the second KES's hex form.
		cert, _, _ := strings.Cut(n.MustCLI(nil, "identity", "of", certFile), "\n")
		tok := strings.TrimSpace(n.MustCLI(nil, "identity", "proof", "--enclave", "tenant", "--cert", certFile, "--key", keyFile))
		var info api.IdentityInfo
		mustJSON(t, n.MustCLI(tenantAdmin, "identity", "add", cert, "--admin", "--enclave", "tenant", "--proof", tok, "--json"), &info)
		if info.Identity != cert || info.Enclave != "tenant" {
			t.Fatalf("identity add = %+v", info)
		}
	})

	t.Run("NewAddsWithItsOwnProof", func(t *testing.T) {
		var out struct {
			APIKey   string `json:"api_key"`
			Identity string `json:"identity"`
			Enclave  string `json:"enclave"`
		}
		mustJSON(t, n.MustCLI(tenantAdmin, "identity", "new", "--admin", "--enclave", "tenant", "--json"), &out)
		key, err := api.ParseAPIKey(out.APIKey)
		if err != nil || out.Enclave != "tenant" {
			t.Fatalf("identity new = %+v, %v", out, err)
		}
		if self, err := n.Client(key).DescribeSelf(ctx); err != nil || self.Enclave != "tenant" {
			t.Fatalf("self = %+v, %v", self, err)
		}
	})

	t.Run("NoExistenceLeak", func(t *testing.T) {
		// A client of enclave "other", tricked into a proof for tenant:
		// tenant's admin is told what it is told without a proof.
		victim := MustAPIKey(t)
		n.MustCLI(root, "identity", "add", victim.Identity(), "--admin", "--enclave", "other")
		tok := strings.TrimSpace(n.MustCLI(victim, "identity", "proof", "--enclave", "tenant"))
		withProof := n.CLI(tenantAdmin, "identity", "add", victim.Identity(), "--admin", "--enclave", "tenant", "--proof", tok)
		notAllowed(t, withProof)
		notAllowed(t, n.CLI(tenantAdmin, "identity", "add", root.Identity(), "--admin", "--enclave", "tenant"))
		if self, err := n.Client(victim).DescribeSelf(ctx); err != nil || self.Enclave != "other" {
			t.Fatalf("the victim moved: %+v, %v", self, err)
		}
		// A cluster admin is told precisely.
		if res := n.CLI(root, "identity", "add", victim.Identity(), "--admin", "--enclave", "tenant"); res.Code != 2 || !strings.Contains(res.Stderr, "identity already exists") {
			t.Fatalf("cluster admin: exit %d, stderr %q", res.Code, res.Stderr)
		}
	})

	t.Run("ClusterIDInStatus", func(t *testing.T) {
		v, err := n.Client(nil).Version(ctx)
		if err != nil || !strings.HasPrefix(v.ClusterID, "c-") {
			t.Fatalf("version = %+v, %v", v, err)
		}
		s, err := n.Client(root).Status(ctx)
		if err != nil || s.ClusterID != v.ClusterID {
			t.Fatalf("status = %+v, %v; want cluster %s", s, err, v.ClusterID)
		}
	})
}

// mustECDSACert writes a self-signed P-256 client certificate and its key.
func mustECDSACert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "app"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
