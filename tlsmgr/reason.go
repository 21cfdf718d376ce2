package tlsmgr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reason is the typed cause of a rejected certificate, key or CA bundle.
// Reasons are stable strings that appear in logs, in ReloadResult, in Status
// and in Check findings. A Reason is an error, so callers test a failure
// with errors.Is(err, tlsmgr.ReasonExpired).
type Reason string

// The reasons a candidate is refused.
const (
	ReasonCertUnreadable Reason = "cert_unreadable"       // the certificate file cannot be read
	ReasonKeyUnreadable  Reason = "key_unreadable"        // the key file cannot be read
	ReasonCAUnreadable   Reason = "ca_unreadable"         // the CA file or directory cannot be read
	ReasonEmpty          Reason = "empty"                 // a file holds no PEM block at all
	ReasonMalformedPEM   Reason = "malformed_pem"         // a truncated block, trailing garbage or an unexpected block type
	ReasonBadCertificate Reason = "bad_certificate"       // a certificate does not parse
	ReasonBadKey         Reason = "bad_key"               // the private key does not parse
	ReasonEncryptedKey   Reason = "encrypted_key"         // the private key is encrypted
	ReasonKeyMismatch    Reason = "key_mismatch"          // the key does not belong to the certificate
	ReasonAlgorithm      Reason = "unsupported_algorithm" // not RSA-2048/3072/4096, ECDSA P-256/P-384 or Ed25519
	ReasonNotYetValid    Reason = "not_yet_valid"         // NotBefore is in the future (beyond ClockSkew)
	ReasonExpired        Reason = "expired"               // NotAfter is in the past
	ReasonHostMismatch   Reason = "host_not_in_sans"      // the node's host is not in the SANs
	ReasonKeyUsage       Reason = "key_usage"             // not usable for both server and client authentication
	ReasonChain          Reason = "chain"                 // the chain does not verify against the CA bundle
)

// ReasonCanceled is the reason of every part of a reload whose context
// ended before it was done: nothing was refused, and nothing was swapped.
const ReasonCanceled Reason = "canceled"

func (r Reason) Error() string { return string(r) }

// ErrNoCertificates is returned by New when Config.Certs is empty.
var ErrNoCertificates = errors.New("tlsmgr: no certificates configured")

// ValidationError is the error of a refused candidate: which file, why
// (Reason) and the underlying detail. errors.Is matches its Reason.
type ValidationError struct {
	File   string // the file the failure is about
	Reason Reason
	Err    error     // the detail; never contains key material
	Time   time.Time // for ReasonExpired and ReasonNotYetValid: the NotAfter or NotBefore at fault
}

func (e *ValidationError) Error() string {
	if msg := e.Err.Error(); strings.Contains(msg, e.File) {
		return fmt.Sprintf("%s: %s", e.Reason, msg) // an *fs.PathError names the file already
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Reason, e.Err)
}

// Unwrap returns the reason and the detail, so errors.Is matches both.
func (e *ValidationError) Unwrap() []error { return []error{e.Reason, e.Err} }

func invalid(file string, r Reason, format string, args ...any) *ValidationError {
	return &ValidationError{File: file, Reason: r, Err: fmt.Errorf(format, args...)}
}

// reasonOf returns the Reason of err, or "" when err is not a ValidationError.
func reasonOf(err error) Reason {
	var v *ValidationError
	if errors.As(err, &v) {
		return v.Reason
	}
	return ""
}
