package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
)

func TestCertCAAndIssue(t *testing.T) {
	setEnv(t, map[string]string{"NO_COLOR": "1"})
	dir := t.TempDir()
	stdout, stderr, code := runCLI(t, "", "cert", "ca", "--out", dir, "--name", "test CA", "--validity", "48h", "--json")
	if code != exitOK {
		t.Fatalf("cert ca: exit %d, %s", code, stderr)
	}
	var ca writtenFiles
	if err := json.Unmarshal([]byte(stdout), &ca); err != nil {
		t.Fatalf("cert ca --json: %v\n%s", err, stdout)
	}
	if ca.Cert != filepath.Join(dir, "ca.crt") || ca.Key != filepath.Join(dir, "ca.key") {
		t.Errorf("cert ca wrote %+v", ca)
	}
	caCert := mustParseCert(t, ca.Cert)
	if caCert.Subject.CommonName != "test CA" || !caCert.IsCA {
		t.Errorf("CA subject %q, IsCA %v", caCert.Subject.CommonName, caCert.IsCA)
	}
	if d := time.Until(caCert.NotAfter); d > 48*time.Hour || d < 47*time.Hour {
		t.Errorf("CA expires in %v, want 48h", d)
	}
	assertMode(t, ca.Key, 0o600)
	assertMode(t, ca.Cert, 0o644)

	prefix := filepath.Join(dir, "nodes", "n1")
	stdout, stderr, code = runCLI(t, "", "cert", "issue", "--ca-cert", ca.Cert, "--ca-key", ca.Key,
		"--host", "kms-1.example.net,localhost", "--ip", "10.0.0.1", "--ip", "127.0.0.1",
		"--validity", "24h", "--key-type", "ed25519", "--out", prefix)
	if code != exitOK {
		t.Fatalf("cert issue: exit %d, %s", code, stderr)
	}
	for _, want := range []string{prefix + ".crt", prefix + ".key", "minkms cert check --cert " + prefix + ".crt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cert issue printed no %q:\n%s", want, stdout)
		}
	}
	assertMode(t, prefix+".key", 0o600)

	// The node's own validation accepts it for each of its hosts.
	for _, host := range []string{"kms-1.example.net", "localhost", "10.0.0.1", "127.0.0.1"} {
		for _, f := range tlsmgr.Check(tlsmgr.CheckConfig{
			Certs: []tlsmgr.Pair{{Cert: prefix + ".crt", Key: prefix + ".key"}}, CA: ca.Cert, Host: host, WarnBefore: time.Hour,
		}) {
			if !f.OK {
				t.Errorf("host %s: %s", host, f)
			}
		}
	}

	t.Run("RefusesToOverwrite", func(t *testing.T) {
		before := mustRead(t, prefix+".key")
		_, stderr, code := runCLI(t, "", "cert", "issue", "--ca-cert", ca.Cert, "--ca-key", ca.Key, "--host", "kms-2.example.net", "--validity", "24h", "--out", prefix)
		if code != exitLocal || !strings.Contains(stderr, "file exists") || !strings.Contains(stderr, "--force") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if string(mustRead(t, prefix+".key")) != string(before) {
			t.Error("the key was replaced")
		}
		_, stderr, code = runCLI(t, "", "cert", "ca", "--out", dir)
		if code != exitLocal || !strings.Contains(stderr, "file exists") {
			t.Errorf("cert ca over an existing CA: exit %d, stderr %q", code, stderr)
		}
		_, stderr, code = runCLI(t, "", "cert", "issue", "--ca-cert", ca.Cert, "--ca-key", ca.Key, "--host", "kms-2.example.net", "--validity", "24h", "--out", prefix, "--force", "--json")
		if code != exitOK {
			t.Fatalf("--force: exit %d, %s", code, stderr)
		}
		if got := mustParseCert(t, prefix+".crt").DNSNames; len(got) != 1 || got[0] != "kms-2.example.net" {
			t.Errorf("after --force the certificate names %v", got)
		}
	})
}

func TestCertIssueRefuses(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, "", "cert", "ca", "--out", dir, "--validity", "48h"); code != exitOK {
		t.Fatal(stderr)
	}
	ca, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	out := filepath.Join(dir, "n1")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"NoHost":      {[]string{"--out", out}, `at least one of the flags in the group [host ip] is required`},
		"IPAsHost":    {[]string{"--host", "10.0.0.1", "--out", out}, "list it as an IP address (--ip)"},
		"BadIP":       {[]string{"--ip", "10.0.0", "--out", out}, `--ip "10.0.0": not an IP address`},
		"OutlivesCA":  {[]string{"--host", "n1.test", "--validity", "72h", "--out", out}, "would outlive the CA"},
		"KeyType":     {[]string{"--host", "n1.test", "--key-type", "dsa", "--out", out}, `unknown key type "dsa"`},
		"OutWithCrt":  {[]string{"--host", "n1.test", "--out", out + ".crt"}, "without .crt or .key"},
		"NoValidity":  {[]string{"--host", "n1.test", "--validity", "0s", "--out", out}, "must be positive"},
		"MissingOut":  {[]string{"--host", "n1.test"}, `required flag(s) "out" not set`},
		"WrongCAFile": {[]string{"--host", "n1.test", "--out", out, "--ca-key", filepath.Join(dir, "nope.key")}, "reading the CA key"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"cert", "issue", "--ca-cert", ca, "--ca-key", key}, tc.args...)
			_, stderr, code := runCLI(t, "", args...)
			if code != exitLocal || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q, want %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(out + ".key"); err == nil {
				t.Error("a key was written")
			}
		})
	}
}

func mustParseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(mustRead(t, path))
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}
