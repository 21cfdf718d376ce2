package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File modes: a private key is readable by its owner only.
const (
	CertMode fs.FileMode = 0o644
	KeyMode  fs.FileMode = 0o600
)

// WriteFiles writes the certificate (PEM "CERTIFICATE") to certFile and
// the private key (unencrypted PKCS#8, PEM "PRIVATE KEY") to keyFile,
// creating their directories. If either file exists and overwrite is
// false, it writes neither and returns an error wrapping ErrExists that
// names the file. With overwrite, each file is replaced atomically (a
// temporary file renamed over it), so a node watching it never reads half
// of one.
func (c *Credential) WriteFiles(certFile, keyFile string, overwrite bool) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return fmt.Errorf("pki: encoding the private key: %w", err)
	}
	defer clear(keyDER)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	defer clear(keyPEM)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})

	if !overwrite {
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("pki: %s: %w (overwrite it with --force)", f, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("pki: %w", err)
			}
		}
	}
	if err := writeFile(keyFile, keyPEM, KeyMode, overwrite); err != nil {
		return err
	}
	return writeFile(certFile, certPEM, CertMode, overwrite)
}

// writeFile writes data to path with mode perm: exclusively (failing if
// the file appeared meanwhile) unless overwrite, else through a temporary
// file in the same directory renamed over path.
func writeFile(path string, data []byte, perm fs.FileMode, overwrite bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pki: %s: %w (overwrite it with --force)", path, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		return finish(f, data, perm)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := finish(f, data, perm); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// finish writes data to f, sets its mode (the umask does not narrow it
// then) and closes it.
func finish(f *os.File, data []byte, perm fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", f.Name(), err)
	}
	return nil
}

// LoadCA reads a CA certificate and its private key as WriteFiles writes
// them (the key also as PKCS#1 or SEC 1). It wraps ErrInvalid if the
// certificate is not a CA or the key does not belong to it.
func LoadCA(certFile, keyFile string) (*Credential, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the CA certificate: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s: %w: no PEM certificate", certFile, ErrInvalid)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s: %w: not a CA certificate", certFile, ErrInvalid)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the CA key: %w", err)
	}
	defer clear(keyPEM)
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s: %w: the key does not belong to the CA certificate %s", keyFile, ErrInvalid, certFile)
	}
	return &Credential{Cert: cert, Key: key}, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM private key", ErrInvalid)
	}
	defer clear(block.Bytes)
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not an unencrypted private key", ErrInvalid, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported private key type %T", ErrInvalid, key)
	}
	return signer, nil
}
