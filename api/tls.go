package api

import (
	"context"
	"net/http"
	"time"
)

// The TLS routes are about the node that answers, not the cluster: every
// node serves its own certificates. Their answers are the same JSON
// documents that the server's certificate manager produces; the types below
// mirror them field for field.

// TLSStatus is the answer of GET /v1/tls/status: what one node serves, how
// its files on disk compare, and how its last checks went.
type TLSStatus struct {
	Pairs     []TLSPairStatus `json:"pairs"`
	CA        TLSCAStatus     `json:"ca"`
	LastCheck time.Time       `json:"last_check"`
	// EffectiveExpiry is the earliest effective expiry of the served pairs.
	EffectiveExpiry time.Time `json:"effective_expiry"`
}

// TLSPairStatus describes the served certificate of one configured pair,
// which is not necessarily what is on disk, and the state of its files.
type TLSPairStatus struct {
	Cert string `json:"cert"` // the configured certificate file
	Key  string `json:"key"`  // the configured key file
	TLSCertificateInfo
	// EffectiveExpiry is the earliest NotAfter of the verified chain, root
	// included: the moment the certificate stops being usable.
	EffectiveExpiry time.Time `json:"effective_expiry"`
	KeyAlgorithm    string    `json:"key_algorithm"` // "ECDSA P-256", "RSA-3072", "Ed25519", …

	LastCheck    time.Time `json:"last_check"`    // the files were last checked
	LastReload   time.Time `json:"last_reload"`   // the last check that succeeded: new content accepted or unchanged
	LastRotation time.Time `json:"last_rotation"` // a new certificate was last swapped in (or loaded at start)
	// LastError and LastErrorReason say why the last check refused the
	// files; both are cleared by the next check that succeeds.
	LastError           string `json:"last_error,omitempty"`
	LastErrorReason     string `json:"last_error_reason,omitempty"` // a reason code, such as "expired" or "key_mismatch"
	ConsecutiveFailures int    `json:"consecutive_failures"`
	// DiffersFromDisk is true when the files on disk are not what is
	// served: they cannot be read or were refused.
	DiffersFromDisk bool `json:"differs_from_disk"`
}

// TLSCertificateInfo identifies one certificate.
type TLSCertificateInfo struct {
	Subject     string    `json:"subject"`
	SANs        []string  `json:"sans,omitempty"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`      // hexadecimal
	Fingerprint string    `json:"fingerprint"` // SHA-256 of the DER, hexadecimal
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
}

// TLSCAStatus describes the served CA bundle and the state of its files,
// with the same bookkeeping as TLSPairStatus.
type TLSCAStatus struct {
	Path                string               `json:"path"`
	Certificates        []TLSCertificateInfo `json:"certificates"`
	LastCheck           time.Time            `json:"last_check"`
	LastReload          time.Time            `json:"last_reload"`
	LastError           string               `json:"last_error,omitempty"`
	LastErrorReason     string               `json:"last_error_reason,omitempty"`
	ConsecutiveFailures int                  `json:"consecutive_failures"`
	DiffersFromDisk     bool                 `json:"differs_from_disk"`
}

// TLSOutcome is what a reload did to one pair or to the CA bundle.
type TLSOutcome string

// The outcomes of a reload.
const (
	TLSUnchanged TLSOutcome = "unchanged" // the files hold what is served; nothing was done
	TLSReloaded  TLSOutcome = "reloaded"  // new files were accepted and are served from the next handshake
	TLSFailed    TLSOutcome = "failed"    // the new files were refused; the last good ones keep serving
)

// TLSReloadResult is the answer of POST /v1/tls/reload: what one reload
// did to each pair and to the CA bundle.
type TLSReloadResult struct {
	Time    time.Time       `json:"time"`
	Pairs   []TLSPairResult `json:"pairs"`
	CA      TLSFileResult   `json:"ca"`
	Rotated bool            `json:"rotated"` // something new is served now
}

// TLSPairResult is the outcome of a reload for one certificate pair.
// Reason and Error say why it failed.
type TLSPairResult struct {
	Cert    string     `json:"cert"`
	Key     string     `json:"key"`
	Outcome TLSOutcome `json:"result"`
	Reason  string     `json:"reason,omitempty"` // a reason code, such as "expired" or "key_mismatch"
	Error   string     `json:"error,omitempty"`
}

// TLSFileResult is the outcome of a reload for the CA bundle.
type TLSFileResult struct {
	Path    string     `json:"path"`
	Outcome TLSOutcome `json:"result"`
	Reason  string     `json:"reason,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// Failed reports whether the reload refused anything: a pair or the CA
// bundle. What was refused was not swapped in; the last good files keep
// serving.
func (r *TLSReloadResult) Failed() bool {
	if r.CA.Outcome == TLSFailed {
		return true
	}
	for _, p := range r.Pairs {
		if p.Outcome == TLSFailed {
			return true
		}
	}
	return false
}

// TLSStatus returns the TLS state of the node that answers: per configured
// pair the certificate it serves and how its files and checks compare, and
// its CA bundle. With several endpoints that may be any node, so to ask a
// particular node use a Client of that endpoint only. Only a cluster admin
// may ask; anyone else gets ErrNotAllowed.
func (c *Client) TLSStatus(ctx context.Context) (*TLSStatus, error) {
	var v TLSStatus
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/tls/status"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ReloadTLS makes the node that answers check its certificate files and CA
// bundle now and serve what changed and passes validation, and returns
// what happened to each. Files the node refuses are not an error of the
// request: the result says TLSFailed with the reason (see
// TLSReloadResult.Failed), and the node keeps serving the last good ones.
// With several endpoints the node may be any of them, so to reload a
// particular node use a Client of that endpoint only. Only a cluster admin
// may reload; anyone else gets ErrNotAllowed.
func (c *Client) ReloadTLS(ctx context.Context) (*TLSReloadResult, error) {
	var v TLSReloadResult
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/tls/reload"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
