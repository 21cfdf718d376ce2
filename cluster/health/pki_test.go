package health_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

var serial int64

func nextSerial() *big.Int { serial++; return big.NewInt(serial) }

// MustCA makes a self-signed root valid a year around now.
func MustCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	return mustIssueCA(tb, name, nil)
}

// MustIntermediate makes an intermediate CA signed by ca.
func (ca *testCA) MustIntermediate(tb testing.TB, name string) *testCA {
	tb.Helper()
	return mustIssueCA(tb, name, ca)
}

func mustIssueCA(tb testing.TB, name string, parent *testCA) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testCA{cert: cert, der: der, key: key}
}

// leafOptions shape a node certificate.
type leafOptions struct {
	notBefore, notAfter time.Time
	usages              []x509.ExtKeyUsage
}

// MustLeaf issues a node certificate for name, valid from a day ago for 90
// days, for server and client authentication unless opts say otherwise,
// and returns its DER.
func (ca *testCA) MustLeaf(tb testing.TB, name string, opts leafOptions) []byte {
	tb.Helper()
	if opts.notBefore.IsZero() {
		opts.notBefore = now.Add(-24 * time.Hour)
	}
	if opts.notAfter.IsZero() {
		opts.notAfter = now.Add(90 * 24 * time.Hour)
	}
	if opts.usages == nil {
		opts.usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: opts.notBefore, NotAfter: opts.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: opts.usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}
