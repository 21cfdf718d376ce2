// Package testpki generates certificates, keys and CA bundles for the tests
// of tlsmgr and its users, including the broken ones that tlsmgr must
// refuse: weak algorithms, encrypted keys, wrong key usages, bad dates.
package testpki

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KeyType selects the key algorithm of a certificate.
type KeyType string

// The key types.
const (
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	P224    KeyType = "p224"
	Ed25519 KeyType = "ed25519"
	RSA1024 KeyType = "rsa1024"
	RSA2048 KeyType = "rsa2048"
)

// MustKey generates a private key of type t.
func MustKey(tb testing.TB, t KeyType) crypto.Signer {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch t {
	case P256, "":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case P224:
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case RSA1024:
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case RSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("testpki: unknown key type %q", t)
	}
	if err != nil {
		tb.Fatalf("testpki: generate %s key: %v", t, err)
	}
	return k
}

// CA is a certificate authority that issues test certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	PEM     []byte // the CA certificate
	parents []*x509.Certificate
}

// MustCA returns a self-signed ECDSA P-256 root CA valid from an hour
// before now for a year.
func MustCA(tb testing.TB, name string, now time.Time) *CA {
	tb.Helper()
	key := MustKey(tb, P256)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return newCA(tb, tmpl, key, tmpl, key, nil)
}

// MustIntermediate returns an intermediate CA signed by ca, valid until
// notAfter.
func (ca *CA) MustIntermediate(tb testing.TB, name string, notAfter time.Time) *CA {
	tb.Helper()
	key := MustKey(tb, P256)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             ca.Cert.NotBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return newCA(tb, tmpl, key, ca.Cert, ca.Key, append([]*x509.Certificate{ca.Cert}, ca.parents...))
}

func newCA(tb testing.TB, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, parents []*x509.Certificate) *CA {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		tb.Fatalf("testpki: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse CA: %v", err)
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM(der), parents: parents}
}

// Leaf is an issued certificate with its key, as PEM files hold them.
type Leaf struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // the leaf followed by the intermediates (not the root)
	KeyPEM  []byte // PKCS#8
}

// Options shape an issued certificate. The zero value is a P-256
// certificate for 127.0.0.1 and localhost, valid from an hour before Now for
// 30 days, for server and client authentication.
type Options struct {
	Now         time.Time // the reference time; zero: time.Now()
	Key         KeyType
	UseKey      crypto.Signer // an existing key instead of a new one
	Hosts       []string
	NotBefore   time.Time
	NotAfter    time.Time
	ExtKeyUsage []x509.ExtKeyUsage
}

// MustIssue issues a certificate signed by ca.
func (ca *CA) MustIssue(tb testing.TB, o Options) *Leaf {
	tb.Helper()
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Hosts == nil {
		o.Hosts = []string{"127.0.0.1", "localhost"}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(30 * 24 * time.Hour)
	}
	if o.ExtKeyUsage == nil {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	key := o.UseKey
	if key == nil {
		key = MustKey(tb, o.Key)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: o.Hosts[0]},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  o.ExtKeyUsage,
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatalf("testpki: issue: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse: %v", err)
	}
	chain := certPEM(der)
	if len(ca.parents) > 0 { // ca is an intermediate: append it and its non-root parents
		chain = append(chain, ca.PEM...)
		for _, p := range ca.parents[:len(ca.parents)-1] {
			chain = append(chain, certPEM(p.Raw)...)
		}
	}
	return &Leaf{Cert: cert, Key: key, CertPEM: chain, KeyPEM: KeyPEM(tb, key)}
}

// KeyPEM encodes key as an unencrypted PKCS#8 PEM block.
func KeyPEM(tb testing.TB, key crypto.Signer) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("testpki: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncryptedPKCS8 returns key as an "ENCRYPTED PRIVATE KEY" (PKCS#8 with
// PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC) under password.
func EncryptedPKCS8(tb testing.TB, key crypto.Signer, password string) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("testpki: marshal key: %v", err)
	}
	salt, iv := make([]byte, 16), make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	const iter = 2048
	dk, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		tb.Fatalf("testpki: pbkdf2: %v", err)
	}
	block, _ := aes.NewCipher(dk)
	pad := aes.BlockSize - len(der)%aes.BlockSize
	for range pad {
		der = append(der, byte(pad))
	}
	ct := make([]byte, len(der))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, der)

	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	mustMarshal := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			tb.Fatalf("testpki: asn1: %v", err)
		}
		return b
	}
	prf := algID{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, Parameters: asn1.NullRawValue}
	kdfParams := mustMarshal(struct {
		Salt []byte
		Iter int
		PRF  algID
	}{salt, iter, prf})
	encParams := mustMarshal(iv)
	params := mustMarshal(struct{ KDF, Enc algID }{
		algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}, asn1.RawValue{FullBytes: kdfParams}},
		algID{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}, asn1.RawValue{FullBytes: encParams}},
	})
	out := mustMarshal(struct {
		Alg  algID
		Data []byte
	}{algID{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, asn1.RawValue{FullBytes: params}}, ct})
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: out})
}

// LegacyEncrypted returns key as a legacy OpenSSL-encrypted "EC PRIVATE
// KEY" block (Proc-Type: 4,ENCRYPTED) under password.
func LegacyEncrypted(tb testing.TB, key *ecdsa.PrivateKey, password string) []byte {
	tb.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatalf("testpki: marshal key: %v", err)
	}
	//lint:ignore SA1019 legacy PEM encryption is exactly what the test needs.
	b, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte(password), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		tb.Fatalf("testpki: encrypt key: %v", err)
	}
	return pem.EncodeToMemory(b)
}

// MustWrite writes data to dir/name (0600) and returns the path.
func MustWrite(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	return path
}

// MustReplace replaces path with data atomically (write a temporary file,
// rename it over path), as editors and config tools do.
func MustReplace(tb testing.TB, path string, data []byte) {
	tb.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatalf("testpki: %v", err)
	}
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatalf("testpki: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}
