package tlsmgr

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// pairFiles is the content of one pair as read from disk, read as one
// consistent pair. The key bytes are secret: clear them when done.
type pairFiles struct {
	cert, key         []byte
	certHash, keyHash [32]byte
}

func (f *pairFiles) clear() { clear(f.key) }

// sameContent reports whether a and b are the hashes of the same files.
func sameContent(aCert, aKey, bCert, bKey [32]byte) bool {
	return aCert == bCert && subtle.ConstantTimeCompare(aKey[:], bKey[:]) == 1
}

// maxReadAttempts bounds how often readPair re-reads a pair whose files
// change while they are read.
const maxReadAttempts = 5

// readPair reads the certificate and key of p as one consistent pair: it
// reads both, then both again, and accepts only when neither changed in
// between, so a writer that replaces them one after the other is not caught
// half-way.
func readPair(p Pair) (pairFiles, error) {
	for range maxReadAttempts {
		c1, err := readFile(p.Cert)
		if err != nil {
			return pairFiles{}, &ValidationError{File: p.Cert, Reason: ReasonCertUnreadable, Err: err}
		}
		k1, err := readFile(p.Key)
		if err != nil {
			return pairFiles{}, &ValidationError{File: p.Key, Reason: ReasonKeyUnreadable, Err: err}
		}
		c2, err1 := readFile(p.Cert)
		k2, err2 := readFile(p.Key)
		stable := err1 == nil && err2 == nil && bytes.Equal(c1, c2) && subtle.ConstantTimeCompare(k1, k2) == 1
		clear(k2)
		if stable {
			return pairFiles{cert: c1, key: k1, certHash: sha256.Sum256(c1), keyHash: sha256.Sum256(k1)}, nil
		}
		clear(k1)
	}
	return pairFiles{}, invalid(p.Cert, ReasonCertUnreadable, "certificate and key kept changing while being read")
}

// maxFileSize bounds what is read of one certificate, key or CA file. Real
// ones are a few KiB (a public CA bundle some hundred); a file that is
// larger is a mistake, and reading it whole must not exhaust the node.
const maxFileSize = 4 << 20

// readFile reads the regular file name, up to maxFileSize. It opens the file
// without blocking and refuses anything but a regular file, so that a FIFO
// or a device put in the place of a certificate cannot hang a reload (and
// every later reload, which waits for it). Its errors are *fs.PathError
// values: "open /etc/minkms/public.crt: no such file or directory".
func readFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > maxFileSize {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is larger than %d bytes", maxFileSize)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err == nil && len(data) > maxFileSize {
		err = &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file is larger than %d bytes", maxFileSize)}
	}
	if err != nil {
		clear(data) // it may be a key
		return nil, err
	}
	return data, nil
}

// caFiles is the content of the CA bundle: one file, or the files of a
// directory in name order.
type caFiles struct {
	isDir bool
	names []string
	data  [][]byte
	hash  [32]byte
}

// readCA reads the CA bundle at path: a file, or every regular file of a
// directory whose name does not start with a dot (Kubernetes keeps its
// "..data" swap directory there).
func readCA(path string) (caFiles, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return caFiles{}, &ValidationError{File: path, Reason: ReasonCAUnreadable, Err: err}
	}
	var names []string
	if fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return caFiles{}, &ValidationError{File: path, Reason: ReasonCAUnreadable, Err: err}
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			name := filepath.Join(path, e.Name())
			if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return caFiles{}, invalid(path, ReasonEmpty, "CA directory holds no certificate files")
		}
	} else {
		names = []string{path}
	}
	h := sha256.New()
	files := caFiles{isDir: fi.IsDir(), names: names}
	for _, name := range names {
		data, err := readFile(name)
		if err != nil {
			return caFiles{}, &ValidationError{File: name, Reason: ReasonCAUnreadable, Err: err}
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
		files.data = append(files.data, data)
	}
	h.Sum(files.hash[:0])
	return files, nil
}

// caBundle is a parsed, accepted CA bundle.
type caBundle struct {
	path  string
	isDir bool
	hash  [32]byte
	pool  *x509.CertPool
	certs []*x509.Certificate
}

// parseCA parses every file of the bundle strictly: a truncated second
// certificate is an error, not a smaller pool.
func parseCA(path string, files caFiles) (*caBundle, error) {
	b := &caBundle{path: path, isDir: files.isDir, hash: files.hash, pool: x509.NewCertPool()}
	for i, name := range files.names {
		certs, err := parseCertificates(name, files.data[i])
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			b.pool.AddCert(c)
			b.certs = append(b.certs, c)
		}
	}
	return b, nil
}

// parseCertificates parses a PEM file that must hold only certificates.
func parseCertificates(file string, data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid(file, ReasonEmpty, "file is empty")
	}
	blocks, err := decodePEM(data)
	if err != nil {
		return nil, &ValidationError{File: file, Reason: ReasonMalformedPEM, Err: err}
	}
	var certs []*x509.Certificate
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, invalid(file, ReasonMalformedPEM, "PEM block %d is %q, not a CERTIFICATE", i+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, invalid(file, ReasonBadCertificate, "certificate %d: %w", i+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// parsePrivateKey parses a PEM file that must hold exactly one unencrypted
// private key (optionally preceded by EC PARAMETERS, as openssl writes it).
// It clears the decoded key bytes.
func parsePrivateKey(file string, data []byte) (crypto.Signer, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid(file, ReasonEmpty, "file is empty")
	}
	blocks, err := decodePEM(data)
	if err != nil {
		return nil, &ValidationError{File: file, Reason: ReasonMalformedPEM, Err: err}
	}
	defer func() {
		for _, b := range blocks {
			clear(b.Bytes)
		}
	}()
	var keys []*pem.Block
	for _, b := range blocks {
		if b.Type != "EC PARAMETERS" {
			keys = append(keys, b)
		}
	}
	if len(keys) != 1 {
		return nil, invalid(file, ReasonMalformedPEM, "want exactly one private key, found %d PEM blocks", len(keys))
	}
	b := keys[0]
	if b.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, invalid(file, ReasonEncryptedKey, "private key is encrypted (PKCS#8); an unencrypted key is required")
	}
	if strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, invalid(file, ReasonEncryptedKey, "private key is encrypted (legacy PEM encryption); an unencrypted key is required")
	}
	var key any
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, invalid(file, ReasonMalformedPEM, "PEM block is %q, not a private key", b.Type)
	}
	if err != nil {
		return nil, invalid(file, ReasonBadKey, "private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, invalid(file, ReasonBadKey, "private key of type %T cannot sign", key)
	}
	return signer, nil
}

// keyAlgorithm names the algorithm of a public key ("ECDSA P-256") and
// reports whether minkms accepts it.
func keyAlgorithm(pub any) (string, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		return fmt.Sprintf("RSA-%d", bits), bits == 2048 || bits == 3072 || bits == 4096
	case *ecdsa.PublicKey:
		name := k.Curve.Params().Name
		return "ECDSA " + name, name == "P-256" || name == "P-384"
	case ed25519.PublicKey:
		return "Ed25519", true
	default:
		return fmt.Sprintf("%T", pub), false
	}
}

// candidate is a validated pair, ready to serve.
type candidate struct {
	pair              Pair
	certHash, keyHash [32]byte
	cert              tls.Certificate
	leaf              *x509.Certificate
	chain             []*x509.Certificate // leaf first, as in the file
	expiry            time.Time           // the earliest NotAfter of the verified chain
	algorithm         string
	ca                *caBundle // the bundle the chain was verified against
}

// checkEnv is what a pair is validated against.
type checkEnv struct {
	ca       *caBundle // nil: the chain is not checked (offline Check only)
	host     string
	peerHost string // "" or the same as host: not checked again
	now      time.Time
	// note, when set, receives every step that passed.
	note func(what, detail string)
}

func (e checkEnv) passed(what, format string, args ...any) {
	if e.note != nil {
		e.note(what, fmt.Sprintf(format, args...))
	}
}

// validatePair checks one candidate pair, step by step, and returns it
// ready to serve or the first reason it must not be served.
func validatePair(p Pair, f pairFiles, env checkEnv) (*candidate, error) {
	chain, err := parseCertificates(p.Cert, f.cert)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	env.passed("certificate", "%d certificate(s); subject %s, issuer %s", len(chain), leaf.Subject, leaf.Issuer)

	key, err := parsePrivateKey(p.Key, f.key)
	if err != nil {
		return nil, err
	}
	env.passed("private key", "unencrypted")

	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, invalid(p.Key, ReasonKeyMismatch, "private key does not match the certificate %s", p.Cert)
	}
	env.passed("key match", "private key matches the certificate")

	alg, ok := keyAlgorithm(leaf.PublicKey)
	if !ok {
		return nil, invalid(p.Cert, ReasonAlgorithm, "key algorithm %s is not supported; use RSA-2048/3072/4096, ECDSA P-256/P-384 or Ed25519", alg)
	}
	env.passed("algorithm", "%s", alg)

	verifyAt := env.now
	for i, c := range chain {
		if env.now.Before(c.NotBefore.Add(-ClockSkew)) {
			e := invalid(p.Cert, ReasonNotYetValid, "certificate %d (%s) is not valid before %s", i+1, c.Subject, formatTime(c.NotBefore))
			e.Time = c.NotBefore
			return nil, e
		}
		if env.now.After(c.NotAfter) {
			e := invalid(p.Cert, ReasonExpired, "certificate %d (%s) expired on %s", i+1, c.Subject, formatTime(c.NotAfter))
			e.Time = c.NotAfter
			return nil, e
		}
		if c.NotBefore.After(verifyAt) {
			verifyAt = c.NotBefore // within the skew allowance
		}
	}
	env.passed("validity", "valid from %s until %s", formatTime(leaf.NotBefore), formatTime(leaf.NotAfter))

	if env.host != "" {
		if err := leaf.VerifyHostname(env.host); err != nil {
			return nil, invalid(p.Cert, ReasonHostMismatch, "host %q is not in the SANs [%s]", env.host, strings.Join(sans(leaf), ", "))
		}
		env.passed("SANs", "host %s is in the SANs [%s]", env.host, strings.Join(sans(leaf), ", "))
	}
	if env.peerHost != "" && env.peerHost != env.host {
		if err := leaf.VerifyHostname(env.peerHost); err != nil {
			return nil, invalid(p.Cert, ReasonHostMismatch, "peer host %q (of cluster.advertise_peer, which the other nodes dial) is not in the SANs [%s]", env.peerHost, strings.Join(sans(leaf), ", "))
		}
		env.passed("SANs", "peer host %s is in the SANs [%s]", env.peerHost, strings.Join(sans(leaf), ", "))
	}

	if err := checkKeyUsage(leaf); err != nil {
		return nil, &ValidationError{File: p.Cert, Reason: ReasonKeyUsage, Err: err}
	}
	env.passed("key usage", "usable for server and client authentication")

	expiry := earliestNotAfter(chain)
	if env.ca != nil {
		expiry, err = verifyChain(p.Cert, chain, env.ca, verifyAt)
		if err != nil {
			return nil, err
		}
		env.passed("chain", "verifies against the CA bundle %s", env.ca.path)
	}

	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return &candidate{
		pair:      p,
		certHash:  f.certHash,
		keyHash:   f.keyHash,
		cert:      tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf},
		leaf:      leaf,
		chain:     chain,
		expiry:    expiry,
		algorithm: alg,
		ca:        env.ca,
	}, nil
}

// checkKeyUsage reports whether leaf may be used for both TLS server and
// client authentication: node certificates serve and dial.
func checkKeyUsage(leaf *x509.Certificate) error {
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("key usage lacks digitalSignature")
	}
	if len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0 {
		return nil // no restriction
	}
	if slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil
	}
	server := slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	client := slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	switch {
	case server && client:
		return nil
	case server:
		return errors.New("extended key usage allows only server authentication; node certificates need serverAuth and clientAuth")
	case client:
		return errors.New("extended key usage allows only client authentication; node certificates need serverAuth and clientAuth")
	default:
		return errors.New("extended key usage allows neither server nor client authentication")
	}
}

// verifyChain verifies chain (leaf first) against the CA bundle for both
// server and client authentication and returns the effective expiry: the
// earliest NotAfter of the verified chain, root included. Of several
// verified chains the one that lasts longest counts.
func verifyChain(file string, chain []*x509.Certificate, ca *caBundle, at time.Time) (time.Time, error) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	var expiry time.Time
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		chains, err := chain[0].Verify(x509.VerifyOptions{
			Roots:         ca.pool,
			Intermediates: inter,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			var inv x509.CertificateInvalidError
			if errors.As(err, &inv) {
				switch inv.Reason {
				case x509.Expired:
					return time.Time{}, invalid(file, ReasonExpired, "chain does not verify against the CA bundle %s: %w", ca.path, err)
				case x509.IncompatibleUsage:
					return time.Time{}, invalid(file, ReasonKeyUsage, "chain does not verify against the CA bundle %s: %w", ca.path, err)
				}
			}
			return time.Time{}, invalid(file, ReasonChain, "chain does not verify against the CA bundle %s: %w", ca.path, err)
		}
		var best time.Time
		for _, c := range chains {
			if e := earliestNotAfter(c); e.After(best) {
				best = e
			}
		}
		if expiry.IsZero() || best.Before(expiry) {
			expiry = best
		}
	}
	return expiry, nil
}

func earliestNotAfter(chain []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range chain {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// sans lists the DNS, IP, URI and e-mail SANs of c.
func sans(c *x509.Certificate) []string {
	var s []string
	s = append(s, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	for _, u := range c.URIs {
		s = append(s, u.String())
	}
	return append(s, c.EmailAddresses...)
}

// timeLayout is the layout of every date in warnings and errors, in UTC.
const timeLayout = "2006-01-02 15:04:05"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }
