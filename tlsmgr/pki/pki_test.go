package pki_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr/pki"
)

func MustCA(tb testing.TB, kt pki.KeyType) *pki.Credential {
	tb.Helper()
	ca, err := pki.NewCA(pki.CAOptions{KeyType: kt})
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

func TestIssueVerifies(t *testing.T) {
	ca := MustCA(t, "")
	leaf, err := ca.Issue(pki.LeafOptions{
		Hosts:    []string{"kms-1.example.net", "localhost"},
		IPs:      []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("::1")},
		Validity: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		for _, host := range []string{"kms-1.example.net", "localhost", "10.0.0.1", "::1"} {
			_, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
			if err != nil {
				t.Errorf("usage %v, host %s: %v", usage, host, err)
			}
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "kms-2.example.net", Roots: roots}); err == nil {
		t.Error("verified for a host it does not name")
	}
	if got := leaf.Cert.Subject.CommonName; got != "kms-1.example.net" {
		t.Errorf("common name %q, want the first host", got)
	}
	if d := leaf.Cert.NotAfter.Sub(leaf.Cert.NotBefore); d != 24*time.Hour {
		t.Errorf("validity %v, want 24h", d)
	}
	if leaf.Cert.IsCA {
		t.Error("the leaf is a CA")
	}
	if !ca.Cert.MaxPathLenZero || ca.Cert.MaxPathLen != 0 {
		t.Error("the CA may sign intermediate CAs")
	}
}

// TestIssueHandshake shows that two nodes with certificates of the same CA
// complete a mutual TLS handshake in both roles.
func TestIssueHandshake(t *testing.T) {
	ca := MustCA(t, "")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	pair := func(l *pki.Credential) tls.Certificate {
		return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	}
	server, err := ca.Issue(pki.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(pki.LeafOptions{Hosts: []string{"n2.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair(server)}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{pair(client)}, RootCAs: roots, ServerName: "127.0.0.1",
	})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

func TestKeyTypes(t *testing.T) {
	for _, kt := range pki.KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			if testing.Short() && kt == pki.RSA4096 {
				t.Skip("RSA-4096 key generation is slow")
			}
			ca := MustCA(t, kt)
			leaf, err := ca.Issue(pki.LeafOptions{Hosts: []string{"n1.test"}, KeyType: kt})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []*pki.Credential{ca, leaf} {
				switch k := c.Key.(type) {
				case *ecdsa.PrivateKey:
					if kt != pki.ECDSAP256 || k.Curve != elliptic.P256() {
						t.Errorf("ECDSA key on %s for %s", k.Curve.Params().Name, kt)
					}
				case ed25519.PrivateKey:
					if kt != pki.Ed25519 {
						t.Errorf("Ed25519 key for %s", kt)
					}
				case *rsa.PrivateKey:
					if want := map[pki.KeyType]int{pki.RSA2048: 2048, pki.RSA3072: 3072, pki.RSA4096: 4096}[kt]; k.N.BitLen() != want {
						t.Errorf("RSA-%d key for %s", k.N.BitLen(), kt)
					}
					if leaf.Cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 && c == leaf {
						t.Error("an RSA leaf without key encipherment")
					}
				default:
					t.Errorf("key of type %T", k)
				}
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "n1.test", Roots: roots}); err != nil {
				t.Error(err)
			}
		})
	}
	if kt, err := pki.ParseKeyType("RSA-3072"); err != nil || kt != pki.RSA3072 {
		t.Errorf("ParseKeyType(RSA-3072) = %q, %v", kt, err)
	}
	if _, err := pki.ParseKeyType("dsa"); !errors.Is(err, pki.ErrInvalid) {
		t.Errorf("ParseKeyType(dsa): %v, want ErrInvalid", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]pki.LeafOptions{
		"NoHost":       {},
		"IPAsHost":     {Hosts: []string{"10.0.0.1"}},
		"BadHost":      {Hosts: []string{"kms_1.example.net"}},
		"EmptyLabel":   {Hosts: []string{"kms..example.net"}},
		"OutlivesCA":   {Hosts: []string{"n1.test"}, Validity: 72 * time.Hour},
		"Negative":     {Hosts: []string{"n1.test"}, Validity: -time.Hour},
		"UnknownKey":   {Hosts: []string{"n1.test"}, KeyType: "dsa"},
		"HyphenLeader": {Hosts: []string{"-n1.test"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ca.Issue(opts); !errors.Is(err, pki.ErrInvalid) {
				t.Errorf("Issue: %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("NotACA", func(t *testing.T) {
		leaf, err := ca.Issue(pki.LeafOptions{Hosts: []string{"n1.test"}, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Issue(pki.LeafOptions{Hosts: []string{"n2.test"}}); !errors.Is(err, pki.ErrInvalid) {
			t.Errorf("a leaf issued: %v", err)
		}
	})
	if _, err := ca.Issue(pki.LeafOptions{Hosts: []string{"*.kms.example.net"}, Validity: time.Hour}); err != nil {
		t.Errorf("wildcard: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	ca := MustCA(t, "")
	certFile, keyFile := filepath.Join(dir, "sub", "ca.crt"), filepath.Join(dir, "sub", "ca.key")
	if err := ca.WriteFiles(certFile, keyFile, false); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", file, fi.Mode().Perm(), want)
		}
	}
	loaded, err := pki.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("LoadCA returned another certificate")
	}

	t.Run("RefusesToOverwrite", func(t *testing.T) {
		before, _ := os.ReadFile(keyFile)
		other := MustCA(t, "")
		err := other.WriteFiles(certFile, keyFile, false)
		if !errors.Is(err, pki.ErrExists) {
			t.Fatalf("WriteFiles over existing files: %v, want ErrExists", err)
		}
		if after, _ := os.ReadFile(keyFile); string(after) != string(before) {
			t.Error("the key file changed")
		}
		// One existing file is enough to write neither.
		newCert := filepath.Join(dir, "new.crt")
		if err := other.WriteFiles(newCert, keyFile, false); !errors.Is(err, pki.ErrExists) {
			t.Fatalf("WriteFiles with an existing key file: %v", err)
		}
		if _, err := os.Stat(newCert); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the certificate was written although the key file exists: %v", err)
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		other := MustCA(t, pki.Ed25519)
		if err := other.WriteFiles(certFile, keyFile, true); err != nil {
			t.Fatal(err)
		}
		loaded, err := pki.LoadCA(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.Cert.Equal(other.Cert) {
			t.Error("the files were not replaced")
		}
		if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
			t.Errorf("replaced key file mode %v", fi.Mode().Perm())
		}
		entries, _ := os.ReadDir(filepath.Dir(certFile))
		if len(entries) != 2 {
			t.Errorf("temporary files left behind: %v", entries)
		}
	})
	t.Run("LoadCAMismatch", func(t *testing.T) {
		other := MustCA(t, "")
		d := t.TempDir()
		if err := other.WriteFiles(filepath.Join(d, "ca.crt"), filepath.Join(d, "ca.key"), false); err != nil {
			t.Fatal(err)
		}
		if _, err := pki.LoadCA(certFile, filepath.Join(d, "ca.key")); !errors.Is(err, pki.ErrInvalid) {
			t.Errorf("LoadCA with another CA's key: %v", err)
		}
	})
}
