// Package pki creates the certificates a minkms cluster needs when the
// operator has no PKI of their own: a CA, and node certificates issued by it
// that name the node's hosts and addresses and serve for both server and
// client authentication (a node is a server to clients and peers, and a
// client when it dials a peer).
//
// It is what `minkms cert ca`, `minkms cert issue` and the development
// nodes use. It is not a certificate authority service: there is no
// revocation, no CSR handling and no intermediate CA. Organisations with a
// PKI of their own issue node certificates there; tlsmgr accepts any that
// meet its checks.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Defaults of CAOptions and LeafOptions.
const (
	DefaultCAName       = "minkms CA"
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour // 87600h
	DefaultLeafValidity = 365 * 24 * time.Hour      // 8760h
	DefaultKeyType      = ECDSAP256
)

// backdate is how far before now a certificate becomes valid, so that a
// peer whose clock is a little behind accepts a certificate issued just now.
const backdate = time.Minute

// Errors that callers branch on.
var (
	// ErrExists is returned when a file to be written exists and overwriting
	// was not asked for. Nothing is written then.
	ErrExists = errors.New("file exists")
	// ErrInvalid is returned for options that cannot make a certificate: an
	// unknown key type, no host, a malformed host name, a validity that is
	// not positive or outlives the CA.
	ErrInvalid = errors.New("invalid certificate options")
)

// KeyType is the algorithm and size of a generated private key.
type KeyType string

// The key types; their names are what the --key-type flags take.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
	RSA3072   KeyType = "rsa-3072"
	RSA4096   KeyType = "rsa-4096"
)

// KeyTypes lists every key type, the default first.
func KeyTypes() []KeyType { return []KeyType{ECDSAP256, Ed25519, RSA2048, RSA3072, RSA4096} }

// ParseKeyType returns the key type named s. It wraps ErrInvalid if there
// is none of that name.
func ParseKeyType(s string) (KeyType, error) {
	for _, kt := range KeyTypes() {
		if strings.EqualFold(s, string(kt)) {
			return kt, nil
		}
	}
	names := make([]string, 0, 5)
	for _, kt := range KeyTypes() {
		names = append(names, string(kt))
	}
	return "", fmt.Errorf("%w: unknown key type %q (use %s)", ErrInvalid, s, strings.Join(names, ", "))
}

// generate creates a new private key of type kt ("" is the default).
func (kt KeyType) generate() (crypto.Signer, error) {
	switch kt {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	default:
		return nil, fmt.Errorf("%w: unknown key type %q", ErrInvalid, string(kt))
	}
}

// Credential is a certificate and its private key: a CA or an issued leaf.
type Credential struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CAOptions shape a new CA. The zero value is a P-256 CA named
// DefaultCAName, valid for DefaultCAValidity.
type CAOptions struct {
	Name     string        // the subject's common name
	Validity time.Duration // from now (backdated by a minute)
	KeyType  KeyType
	Now      func() time.Time // for tests; time.Now if nil
}

// NewCA creates a self-signed CA that may sign leaf certificates only (no
// intermediate CAs below it).
func NewCA(opts CAOptions) (*Credential, error) {
	if opts.Name == "" {
		opts.Name = DefaultCAName
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultCAValidity
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("%w: CA validity %v is not positive", ErrInvalid, opts.Validity)
	}
	key, err := opts.KeyType.generate()
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	notBefore := now(opts.Now).Add(-backdate)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return create(tmpl, tmpl, key.Public(), key, key)
}

// LeafOptions shape an issued certificate. At least one host or IP is
// needed; the first becomes the subject's common name.
type LeafOptions struct {
	Hosts    []string // DNS names for the SANs ("kms-1.example.net", "*.kms.example.net")
	IPs      []net.IP // IP addresses for the SANs
	Validity time.Duration
	KeyType  KeyType
	Now      func() time.Time // for tests; time.Now if nil
}

// Issue creates a new key and a certificate for it signed by ca, usable for
// both server and client authentication. The certificate must not outlive
// the CA: such a validity wraps ErrInvalid and names the CA's expiry.
func (ca *Credential) Issue(opts LeafOptions) (*Credential, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil || !ca.Cert.IsCA {
		return nil, fmt.Errorf("%w: the issuer is not a CA certificate with its key", ErrInvalid)
	}
	if len(opts.Hosts) == 0 && len(opts.IPs) == 0 {
		return nil, fmt.Errorf("%w: no host and no IP address to name in the certificate", ErrInvalid)
	}
	for _, h := range opts.Hosts {
		if err := checkHost(h); err != nil {
			return nil, err
		}
	}
	if opts.Validity == 0 {
		opts.Validity = DefaultLeafValidity
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("%w: validity %v is not positive", ErrInvalid, opts.Validity)
	}
	notBefore := now(opts.Now).Add(-backdate)
	notAfter := notBefore.Add(opts.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("%w: a validity of %v would outlive the CA, which expires %s; choose a shorter validity or a new CA",
			ErrInvalid, opts.Validity, ca.Cert.NotAfter.UTC().Format(time.DateTime))
	}
	key, err := opts.KeyType.generate()
	if err != nil {
		return nil, fmt.Errorf("pki: key: %w", err)
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // RSA key exchange in TLS 1.2
	}
	cn := ""
	if len(opts.Hosts) > 0 {
		cn = opts.Hosts[0]
	} else {
		cn = opts.IPs[0].String()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              append([]string(nil), opts.Hosts...),
		IPAddresses:           append([]net.IP(nil), opts.IPs...),
	}
	return create(tmpl, ca.Cert, key.Public(), ca.Key, key)
}

// checkHost accepts a DNS name, with an optional leading "*." label, and
// refuses an IP address: that belongs in the IP SANs, where TLS clients
// look for it.
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return fmt.Errorf("%w: host %q is an IP address; list it as an IP address (--ip)", ErrInvalid, h)
	}
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 {
		return fmt.Errorf("%w: invalid host name %q", ErrInvalid, h)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: invalid host name %q", ErrInvalid, h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%w: invalid host name %q: %q is not allowed", ErrInvalid, h, r)
			}
		}
	}
	return nil
}

func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer, key crypto.Signer) (*Credential, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: creating the certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing the new certificate: %w", err)
	}
	return &Credential{Cert: cert, Key: key}, nil
}

func now(f func() time.Time) time.Time {
	if f == nil {
		f = time.Now
	}
	return f().UTC().Truncate(time.Second)
}

// serial returns a random positive 127-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
