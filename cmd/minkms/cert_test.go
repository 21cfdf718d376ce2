package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/tlsmgr"
)

// testCA issues certificates into a test's temporary directory. It is a
// compact stand-in for tlsmgr's internal testpki, which cmd cannot import.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  crypto.Signer
	file string // the CA certificate, PEM
}

// MustCA returns a self-signed P-256 CA named name whose certificate is in
// dir/name.crt.
func MustCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := mustKey(t, 256)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: dir, cert: cert, key: key}
	ca.file = mustWrite(t, dir, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// leaf shapes an issued certificate. The zero value is a P-256 certificate
// for n1.test and 127.0.0.1, valid from an hour ago for 30 days, for server
// and client authentication.
type leaf struct {
	key         crypto.Signer
	hosts       []string
	notBefore   time.Time
	notAfter    time.Time
	extKeyUsage []x509.ExtKeyUsage
}

// MustIssue issues a certificate as l says and writes it and its key
// (unencrypted PKCS#8) to dir/name.crt and dir/name.key.
func (ca *testCA) MustIssue(name string, l leaf) (certFile, keyFile string) {
	t := ca.t
	t.Helper()
	now := time.Now()
	if l.key == nil {
		l.key = mustKey(t, 256)
	}
	if l.hosts == nil {
		l.hosts = []string{"n1.test", "127.0.0.1"}
	}
	if l.notBefore.IsZero() {
		l.notBefore = now.Add(-time.Hour)
	}
	if l.notAfter.IsZero() {
		l.notAfter = now.Add(30 * 24 * time.Hour)
	}
	if l.extKeyUsage == nil {
		l.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: l.hosts[0]},
		NotBefore:    l.notBefore,
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  l.extKeyUsage,
	}
	for _, h := range l.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, l.key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = mustWrite(t, ca.dir, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyFile = mustWrite(t, ca.dir, name+".key", keyPEM(t, l.key))
	return certFile, keyFile
}

// mustKey returns a new ECDSA P-256 key (bits 256) or an RSA key of bits.
func mustKey(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	if bits == 256 {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		k, err = rsa.GenerateKey(rand.Reader, bits)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func mustWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCertCheck(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	ca := MustCA(t, dir, "ca")
	goodCert, goodKey := ca.MustIssue("good", leaf{})
	_, otherKey := ca.MustIssue("other", leaf{})
	now := time.Now()

	tests := []struct {
		name       string
		files      func() (cert, key, caFile string)
		wantReason string // "" for a good pair
		wantDetail string // a part of the output
	}{
		{
			name:       "Good",
			files:      func() (string, string, string) { return goodCert, goodKey, ca.file },
			wantDetail: "ok      " + goodCert + ": chain: verifies against the CA bundle " + ca.file,
		},
		{
			name: "MissingCert",
			files: func() (string, string, string) {
				return filepath.Join(dir, "missing.crt"), goodKey, ca.file
			},
			wantReason: "cert_unreadable",
			wantDetail: "no such file or directory",
		},
		{
			name: "MissingKey",
			files: func() (string, string, string) {
				return goodCert, filepath.Join(dir, "missing.key"), ca.file
			},
			wantReason: "key_unreadable",
			wantDetail: "missing.key",
		},
		{
			name: "EmptyFile",
			files: func() (string, string, string) {
				return mustWrite(t, dir, "empty.crt", nil), goodKey, ca.file
			},
			wantReason: "empty",
			wantDetail: "file is empty",
		},
		{
			name: "TruncatedPEM",
			files: func() (string, string, string) {
				data := mustRead(t, goodCert)
				return mustWrite(t, dir, "truncated.crt", data[:len(data)/2]), goodKey, ca.file
			},
			wantReason: "malformed_pem",
			wantDetail: "truncated or malformed PEM block 1",
		},
		{
			name: "TrailingGarbage",
			files: func() (string, string, string) {
				data := append(mustRead(t, goodCert), "garbage\n"...)
				return mustWrite(t, dir, "trailing.crt", data), goodKey, ca.file
			},
			wantReason: "malformed_pem",
			wantDetail: "trailing data after PEM block 1",
		},
		{
			name:       "KeyMismatch",
			files:      func() (string, string, string) { return goodCert, otherKey, ca.file },
			wantReason: "key_mismatch",
			wantDetail: "private key does not match the certificate",
		},
		{
			name: "EncryptedKey",
			files: func() (string, string, string) {
				key := mustKey(t, 256)
				cert, _ := ca.MustIssue("encrypted", leaf{key: key})
				der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
				if err != nil {
					t.Fatal(err)
				}
				//lint:ignore SA1019 an encrypted key is exactly what the test needs.
				block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte("secret"), x509.PEMCipherAES256) //nolint:staticcheck
				if err != nil {
					t.Fatal(err)
				}
				return cert, mustWrite(t, dir, "encrypted.key", pem.EncodeToMemory(block)), ca.file
			},
			wantReason: "encrypted_key",
			wantDetail: "private key is encrypted",
		},
		{
			name: "RSA1024",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("rsa1024", leaf{key: mustKey(t, 1024)})
				return cert, key, ca.file
			},
			wantReason: "unsupported_algorithm",
			wantDetail: "key algorithm RSA-1024 is not supported",
		},
		{
			name: "Expired",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("expired", leaf{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})
				return cert, key, ca.file
			},
			wantReason: "expired",
			wantDetail: "expired on",
		},
		{
			name: "NotYetValid",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("future", leaf{notBefore: now.Add(time.Hour)})
				return cert, key, ca.file
			},
			wantReason: "not_yet_valid",
			wantDetail: "is not valid before",
		},
		{
			name: "HostNotInSANs",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("elsewhere", leaf{hosts: []string{"n2.test"}})
				return cert, key, ca.file
			},
			wantReason: "host_not_in_sans",
			wantDetail: `host "n1.test" is not in the SANs [n2.test]`,
		},
		{
			name: "ServerAuthOnly",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("serveronly", leaf{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				return cert, key, ca.file
			},
			wantReason: "key_usage",
			wantDetail: "extended key usage allows only server authentication",
		},
		{
			name: "WrongCA",
			files: func() (string, string, string) {
				other := MustCA(t, dir, "other-ca")
				return goodCert, goodKey, other.file
			},
			wantReason: "chain",
			wantDetail: "chain does not verify against the CA bundle",
		},
		{
			name: "ExpiresSoon",
			files: func() (string, string, string) {
				cert, key := ca.MustIssue("soon", leaf{notAfter: now.Add(10 * time.Hour)})
				return cert, key, ca.file
			},
			wantDetail: "PROBLEM " + filepath.Join(dir, "soon.crt") + ": expiry: Certificate " + filepath.Join(dir, "soon.crt") + " expires in 10h",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, key, caFile := tt.files()
			stdout, stderr, code := runCLI(t, "", "cert", "check", "--cert", cert, "--key", key, "--ca", caFile, "--host", "n1.test")
			if !strings.Contains(stdout, tt.wantDetail) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantDetail, stdout)
			}
			if strings.Contains(stdout, "\x1b[") {
				t.Errorf("stdout is coloured though it is not a terminal: %q", stdout)
			}
			if tt.name == "Good" {
				if code != exitOK || strings.Contains(stdout, "PROBLEM") || stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and no problem:\n%s", code, stderr, stdout)
				}
				for _, step := range []string{"CA bundle", "certificate", "private key", "key match", "algorithm: ECDSA P-256",
					"validity: valid from", "SANs: host n1.test is in the SANs [n1.test, 127.0.0.1]", "key usage", "chain", "expiry: effective expiry"} {
					if !strings.Contains(stdout, ": "+step) {
						t.Errorf("stdout lacks the step %q:\n%s", step, stdout)
					}
				}
				if !strings.HasSuffix(stdout, "No problems found.\n") {
					t.Errorf("stdout does not end with the verdict:\n%s", stdout)
				}
				return
			}
			if code != exitLocal {
				t.Errorf("exit code = %d, want %d", code, exitLocal)
			}
			if stderr != "minkms: cert check found 1 problem\n" {
				t.Errorf("stderr = %q", stderr)
			}
			if n := strings.Count(stdout, "PROBLEM"); n != 1 {
				t.Errorf("%d problems in the output, want 1:\n%s", n, stdout)
			}
			if tt.wantReason != "" && !strings.Contains(stdout, "("+tt.wantReason+")\n") {
				t.Errorf("stdout does not name the reason %s:\n%s", tt.wantReason, stdout)
			}
		})
	}
}

// TestCertCheckTruncatedCABundle: a CA bundle whose second certificate is
// cut off is a problem, not a smaller bundle, and the chain is not checked
// against what was left of it.
func TestCertCheckTruncatedCABundle(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	ca := MustCA(t, dir, "ca")
	other := MustCA(t, dir, "other")
	cert, key := ca.MustIssue("good", leaf{})
	second := mustRead(t, other.file)
	bundle := mustWrite(t, dir, "bundle.crt", append(mustRead(t, ca.file), second[:len(second)/2]...))
	stdout, stderr, code := runCLI(t, "", "cert", "check", "--cert", cert, "--key", key, "--ca", bundle, "--host", "n1.test")
	if code != exitLocal || !strings.HasPrefix(stderr, "minkms: cert check found") {
		t.Errorf("exit %d, stderr %q; want 1", code, stderr)
	}
	for _, want := range []string{
		"PROBLEM " + bundle + ": CA bundle: truncated or malformed PEM block 2",
		"(malformed_pem)",
		"PROBLEM " + cert + ": chain: not checked: the CA bundle is invalid",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestCertCheckSkipsWhatItIsNotGiven(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	ca := MustCA(t, dir, "ca")
	cert, key := ca.MustIssue("n1", leaf{hosts: []string{"n9.test"}})
	stdout, stderr, code := runCLI(t, "", "cert", "check", "--cert", cert, "--key", key)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q:\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"skip    SANs: not checked", "skip    chain: not checked"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// mustNodeConfig writes a node config file for the given pairs and returns
// its path.
func mustNodeConfig(t *testing.T, dir, caFile, advertise, warnBefore string, pairs ...[2]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: v1\ndata_dir: " + filepath.Join(dir, "data") + "\nroot_key:\n  env: MINKMS_ROOT_KEY\ntls:\n  certs:\n")
	for _, p := range pairs {
		b.WriteString("    - cert: " + p[0] + "\n      key: " + p[1] + "\n")
	}
	b.WriteString("  ca: " + caFile + "\n")
	if warnBefore != "" {
		b.WriteString("  warn_before: " + warnBefore + "\n")
	}
	b.WriteString("cluster:\n  node_id: n1\n  advertise: " + advertise + "\n")
	return mustWrite(t, dir, "config.yaml", []byte(b.String()))
}

func TestCertCheckConfig(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	ca := MustCA(t, dir, "ca")
	n1Cert, n1Key := ca.MustIssue("n1", leaf{})
	soonCert, soonKey := ca.MustIssue("soon", leaf{notAfter: time.Now().Add(20 * time.Hour)})
	serverOnlyCert, serverOnlyKey := ca.MustIssue("serveronly", leaf{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})

	tests := []struct {
		name     string
		config   string
		args     []string
		wantCode int
		want     []string // parts of stdout
	}{
		{
			name:     "AdvertisedHost",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n1.test:7373", "", [2]string{n1Cert, n1Key}),
			wantCode: exitOK,
			want:     []string{"ok      " + n1Cert + ": SANs: host n1.test is in the SANs", "ok      " + ca.file + ": CA bundle: 1 certificate(s)"},
		},
		{
			name:     "AdvertisedHostNotInSANs",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n2.test:7373", "", [2]string{n1Cert, n1Key}),
			wantCode: exitLocal,
			want:     []string{"PROBLEM " + n1Cert + `: SANs: host "n2.test" is not in the SANs [n1.test, 127.0.0.1] (host_not_in_sans)`},
		},
		{
			name:     "HostFlagWins",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n2.test:7373", "", [2]string{n1Cert, n1Key}),
			args:     []string{"--host", "127.0.0.1"},
			wantCode: exitOK,
			want:     []string{"SANs: host 127.0.0.1 is in the SANs"},
		},
		{
			name:     "UnspecifiedAdvertiseSkipsSANs",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "0.0.0.0:7373", "", [2]string{n1Cert, n1Key}),
			wantCode: exitOK,
			want:     []string{"skip    SANs: not checked"},
		},
		{
			name:     "EveryPair",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n1.test:7373", "", [2]string{n1Cert, n1Key}, [2]string{serverOnlyCert, serverOnlyKey}),
			wantCode: exitLocal,
			want:     []string{"ok      " + n1Cert + ": expiry", "PROBLEM " + serverOnlyCert + ": key usage"},
		},
		{
			name:     "WarnBeforeFromConfig",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n1.test:7373", "12h", [2]string{soonCert, soonKey}),
			wantCode: exitOK,
			want:     []string{"ok      " + soonCert + ": expiry: effective expiry"},
		},
		{
			name:     "DefaultWarnBefore",
			config:   mustNodeConfig(t, t.TempDir(), ca.file, "n1.test:7373", "", [2]string{soonCert, soonKey}),
			wantCode: exitLocal,
			want:     []string{"PROBLEM " + soonCert + ": expiry: Certificate " + soonCert + " expires in 20h"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cert", "check", "--config", tt.config}, tt.args...)
			stdout, stderr, code := runCLI(t, "", args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
		})
	}
	t.Run("BadConfig", func(t *testing.T) {
		_, stderr, code := runCLI(t, "", "cert", "check", "--config", filepath.Join(dir, "missing.yaml"))
		if code != exitLocal || !strings.HasPrefix(stderr, "minkms: reading config: ") {
			t.Errorf("exit %d, stderr %q; want 1 and the config error", code, stderr)
		}
	})
}

func TestCertCheckFlags(t *testing.T) {
	setEnv(t, nil)
	tests := []struct {
		name string
		args []string
		want string // part of stderr
	}{
		{"Nothing", nil, "[config cert]"},
		{"ConfigAndCert", []string{"--config", "c.yaml", "--cert", "a.crt", "--key", "a.key"}, "none of the others can be"},
		{"ConfigAndCA", []string{"--config", "c.yaml", "--ca", "ca.crt"}, "none of the others can be"},
		{"CertWithoutKey", []string{"--cert", "a.crt"}, "[cert key]"},
		{"Argument", []string{"a.crt"}, "usage: minkms cert check [flags]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, "", append([]string{"cert", "check"}, tt.args...)...)
			if code != exitLocal || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestCertCheckJSON(t *testing.T) {
	setEnv(t, nil)
	dir := t.TempDir()
	ca := MustCA(t, dir, "ca")
	cert, key := ca.MustIssue("n1", leaf{})
	_, otherKey := ca.MustIssue("other", leaf{})

	tests := []struct {
		name       string
		key        string
		wantCode   int
		wantOK     bool
		wantReason tlsmgr.Reason // of the last finding
	}{
		{"Good", key, exitOK, true, ""},
		{"KeyMismatch", otherKey, exitLocal, false, tlsmgr.ReasonKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, "", "cert", "check", "--cert", cert, "--key", tt.key, "--ca", ca.file, "--host", "n1.test", "--json")
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			var got checkReport
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON report (%v):\n%s", err, stdout)
			}
			if got.OK != tt.wantOK || got.Host != "n1.test" || got.CA != ca.file || len(got.Findings) == 0 {
				t.Fatalf("report = %+v", got)
			}
			last := got.Findings[len(got.Findings)-1]
			if last.Reason != tt.wantReason || last.OK != tt.wantOK {
				t.Errorf("last finding = %+v, want OK %v and reason %q", last, tt.wantOK, tt.wantReason)
			}
		})
	}
}

// tlsStatusFixture is a node's TLS status as the server writes it: one
// pair whose new files were refused, and a CA bundle.
func tlsStatusFixture() api.TLSStatus {
	now := time.Now().UTC()
	ca := api.TLSCertificateInfo{Subject: "CN=minkms CA", Issuer: "CN=minkms CA", Serial: "ca01", Fingerprint: "cafe",
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(3650 * 24 * time.Hour)}
	return api.TLSStatus{
		Pairs: []api.TLSPairStatus{{
			Cert: "/etc/minkms/tls/public.crt", Key: "/etc/minkms/tls/private.key",
			TLSCertificateInfo: api.TLSCertificateInfo{
				Subject: "CN=n1.kms.example.net", SANs: []string{"n1.kms.example.net", "10.0.0.11"},
				Issuer: "CN=minkms CA", Serial: "1a2b3c", Fingerprint: "00ff00ff",
				NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(90*24*time.Hour + time.Hour),
			},
			EffectiveExpiry: now.Add(90*24*time.Hour + time.Hour), KeyAlgorithm: "ECDSA P-256",
			LastCheck: now.Add(-time.Minute), LastReload: now.Add(-2 * time.Hour), LastRotation: now.Add(-24 * time.Hour),
			LastError:           "/etc/minkms/tls/private.key: key_mismatch: private key does not match the certificate /etc/minkms/tls/public.crt",
			LastErrorReason:     string(tlsmgr.ReasonKeyMismatch),
			ConsecutiveFailures: 2, DiffersFromDisk: true,
		}},
		CA: api.TLSCAStatus{
			Path: "/etc/minkms/ca/ca.crt", Certificates: []api.TLSCertificateInfo{ca},
			LastCheck: now.Add(-time.Minute), LastReload: now.Add(-time.Minute),
		},
		LastCheck:       now.Add(-time.Minute),
		EffectiveExpiry: now.Add(90*24*time.Hour + time.Hour),
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCertStatus(t *testing.T) {
	status := mustJSON(t, tlsStatusFixture())
	t.Run("Text", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{"GET /v1/tls/status": {200, status}})
		stdout, stderr, code := runCLI(t, "", "cert", "status")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, want := range []string{
			"TLS status of " + srv.URL + "\n",
			"Pair 1: /etc/minkms/tls/public.crt\n",
			"Key file:              /etc/minkms/tls/private.key\n",
			"Subject:               CN=n1.kms.example.net\n",
			"Serial:                1a2b3c\n",
			"Fingerprint:           00ff00ff\n",
			"SANs:                  n1.kms.example.net, 10.0.0.11\n",
			"(in 90 days)\n",
			"Key algorithm:         ECDSA P-256\n",
			"Consecutive failures:  2\n",
			"Last error:            /etc/minkms/tls/private.key: key_mismatch: private key does not match",
			"Differs from disk:     yes: the files on disk are unreadable or were refused; the certificate above keeps serving\n",
			"CA bundle: /etc/minkms/ca/ca.crt\n",
			"CN=minkms CA, serial ca01, expires ",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, "\x1b[") {
			t.Errorf("stdout is coloured though it is not a terminal: %q", stdout)
		}
		if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].method != "GET" || reqs[0].path != "/v1/tls/status" {
			t.Errorf("requests = %v, want one GET /v1/tls/status", reqs)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/tls/status": {200, status}})
		stdout, stderr, code := runCLI(t, "", "cert", "status", "--json")
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var got api.TLSStatus
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil || dec.More() {
			t.Fatalf("stdout is not one JSON status (%v):\n%s", err, stdout)
		}
		if !jsonEqual(mustJSON(t, got), status) {
			t.Errorf("stdout = %s, want the server's %s", stdout, status)
		}
	})
	t.Run("NotAdmin", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/tls/status": {403, `{"message":"not authorized: insufficient permissions"}`}})
		_, stderr, code := runCLI(t, "", "cert", "status")
		if code != exitRefused || stderr != "minkms: not authorized: insufficient permissions\n" {
			t.Errorf("exit %d, stderr %q; want 2 and the server's message", code, stderr)
		}
	})
	t.Run("SeveralServers", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{"GET /v1/tls/status": {200, status}})
		t.Setenv(envServer, srv.URL+","+srv.URL)
		_, stderr, code := runCLI(t, "", "cert", "status")
		if code != exitLocal || !strings.Contains(stderr, "asks one node, but 2 servers are given") {
			t.Errorf("exit %d, stderr %q; want 1 and a request for one server", code, stderr)
		}
		if len(srv.Requests()) != 0 {
			t.Error("a request was sent")
		}
	})
}

func TestCertReload(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	result := func(pair, ca api.TLSOutcome) string {
		res := api.TLSReloadResult{
			Time:    now,
			Pairs:   []api.TLSPairResult{{Cert: "/etc/minkms/tls/public.crt", Key: "/etc/minkms/tls/private.key", Outcome: pair}},
			CA:      api.TLSFileResult{Path: "/etc/minkms/ca/ca.crt", Outcome: ca},
			Rotated: pair == api.TLSReloaded || ca == api.TLSReloaded,
		}
		if pair == api.TLSFailed {
			res.Pairs[0].Reason = string(tlsmgr.ReasonExpired)
			res.Pairs[0].Error = "/etc/minkms/tls/public.crt: expired: certificate 1 (CN=n1) expired on 2026-01-01 00:00:00"
		}
		if ca == api.TLSFailed {
			res.CA.Reason = string(tlsmgr.ReasonChain)
			res.CA.Error = "/etc/minkms/ca/ca.crt: chain: the served certificate /etc/minkms/tls/public.crt does not chain to the new CA bundle"
		}
		return mustJSON(t, res)
	}
	tests := []struct {
		name       string
		answer     answer
		json       bool
		wantCode   int
		wantStdout []string
		wantStderr string // part of stderr; "" for none
	}{
		{
			name:       "Unchanged",
			answer:     answer{200, result(api.TLSUnchanged, api.TLSUnchanged)},
			wantCode:   exitOK,
			wantStdout: []string{"/etc/minkms/tls/public.crt         unchanged\n", "/etc/minkms/ca/ca.crt (CA bundle)  unchanged\n", "Nothing changed"},
		},
		{
			name:       "Reloaded",
			answer:     answer{200, result(api.TLSReloaded, api.TLSUnchanged)},
			wantCode:   exitOK,
			wantStdout: []string{"/etc/minkms/tls/public.crt         reloaded\n", "New certificates are served from the next handshake."},
		},
		{
			name:       "PairFailed",
			answer:     answer{200, result(api.TLSFailed, api.TLSUnchanged)},
			wantCode:   exitLocal,
			wantStdout: []string{"/etc/minkms/tls/public.crt         failed: /etc/minkms/tls/public.crt: expired: certificate 1 (CN=n1) expired on 2026-01-01 00:00:00\n"},
			wantStderr: "minkms: 1 certificate pair failed to reload; the node keeps serving its old certificate",
		},
		{
			name:       "CAFailed",
			answer:     answer{200, result(api.TLSUnchanged, api.TLSFailed)},
			wantCode:   exitLocal,
			wantStdout: []string{"/etc/minkms/ca/ca.crt (CA bundle)  failed: /etc/minkms/ca/ca.crt: chain: the served certificate"},
			wantStderr: "minkms: the CA bundle failed to reload; the node keeps serving its old bundle",
		},
		{
			name:       "PairFailedJSON",
			answer:     answer{200, result(api.TLSFailed, api.TLSUnchanged)},
			json:       true,
			wantCode:   exitLocal,
			wantStdout: []string{`"result": "failed"`, `"reason": "expired"`},
			wantStderr: "keeps serving its old certificate",
		},
		{
			name:       "NotAdmin",
			answer:     answer{403, `{"message":"not authorized: insufficient permissions"}`},
			wantCode:   exitRefused,
			wantStderr: "minkms: not authorized: insufficient permissions\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, map[string]answer{"POST /v1/tls/reload": tt.answer})
			args := []string{"cert", "reload"}
			if tt.json {
				args = append(args, "--json")
			}
			stdout, stderr, code := runCLI(t, "", args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if !strings.Contains(stderr, tt.wantStderr) || (tt.wantStderr == "") != (stderr == "") {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
			if tt.json && tt.answer.status == 200 {
				var got api.TLSReloadResult
				dec := json.NewDecoder(strings.NewReader(stdout))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil || dec.More() {
					t.Errorf("stdout is not one JSON result (%v):\n%s", err, stdout)
				}
			}
			if strings.Contains(stdout, "\x1b[") {
				t.Errorf("stdout is coloured though it is not a terminal: %q", stdout)
			}
			if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].method != "POST" || reqs[0].path != "/v1/tls/reload" {
				t.Errorf("requests = %v, want one POST /v1/tls/reload", reqs)
			}
		})
	}
}
