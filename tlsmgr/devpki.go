package tlsmgr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevPKI names the files written by WriteDevPKI.
type DevPKI struct {
	CACert string // the CA certificate (ca.crt)
	CAKey  string // the CA private key (ca.key, 0600)
	Cert   string // the node certificate (node.crt)
	Key    string // the node private key (node.key, 0600)
}

// WriteDevPKI writes a development PKI into dir: an ECDSA P-256 CA (ca.crt,
// ca.key) and a node certificate signed by it (node.crt, node.key) for
// hosts, with IP addresses as IP SANs and names as DNS SANs, usable for both
// server and client authentication. Both are valid from a minute ago for
// validity; the CA outlives the node certificate by an hour. It is meant for
// development and tests, never for production.
func WriteDevPKI(dir string, hosts []string, validity time.Duration) (DevPKI, error) {
	if len(hosts) == 0 {
		return DevPKI{}, errors.New("tlsmgr: dev PKI: no hosts")
	}
	if validity <= 0 {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: invalid validity %v", validity)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
	}
	now := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          devSerial(),
		Subject:               pkix.Name{CommonName: "minkms development CA"},
		NotBefore:             now,
		NotAfter:              now.Add(validity + time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: CA certificate: %w", err)
	}

	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: node key: %w", err)
	}
	nodeTmpl := &x509.Certificate{
		SerialNumber: devSerial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now,
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			nodeTmpl.IPAddresses = append(nodeTmpl.IPAddresses, ip)
		} else {
			nodeTmpl.DNSNames = append(nodeTmpl.DNSNames, h)
		}
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, caCert, &nodeKey.PublicKey, caKey)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: node certificate: %w", err)
	}

	p := DevPKI{
		CACert: filepath.Join(dir, "ca.crt"),
		CAKey:  filepath.Join(dir, "ca.key"),
		Cert:   filepath.Join(dir, "node.crt"),
		Key:    filepath.Join(dir, "node.key"),
	}
	caKeyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: CA key: %w", err)
	}
	defer clear(caKeyDER)
	nodeKeyDER, err := x509.MarshalPKCS8PrivateKey(nodeKey)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: node key: %w", err)
	}
	defer clear(nodeKeyDER)
	files := []struct {
		path string
		typ  string
		der  []byte
		perm os.FileMode
	}{
		{p.CACert, "CERTIFICATE", caDER, 0o644},
		{p.CAKey, "PRIVATE KEY", caKeyDER, 0o600},
		{p.Cert, "CERTIFICATE", nodeDER, 0o644},
		{p.Key, "PRIVATE KEY", nodeKeyDER, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		err := os.WriteFile(f.path, data, f.perm)
		clear(data)
		if err != nil {
			return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
		}
	}
	return p, nil
}

func devSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
