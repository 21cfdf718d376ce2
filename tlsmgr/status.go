package tlsmgr

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// Outcome is what a reload did to one pair or to the CA bundle.
type Outcome string

// The outcomes of a reload.
const (
	Unchanged Outcome = "unchanged" // the files hold what is served; nothing was done
	Reloaded  Outcome = "reloaded"  // a new candidate was accepted and is now served
	Failed    Outcome = "failed"    // the candidate was refused; the last good one keeps serving
)

// ReloadResult is what one Reload did, per pair and to the CA bundle. It is
// the answer of POST /v1/tls/reload.
type ReloadResult struct {
	Time    time.Time
	Pairs   []PairResult
	CA      FileResult
	Rotated bool // something new is served; subscribers were told
}

// PairResult is the outcome of a reload for one certificate pair.
type PairResult struct {
	Cert    string
	Key     string
	Outcome Outcome
	Reason  Reason
	Error   string
}

// FileResult is the outcome of a reload for the CA bundle.
type FileResult struct {
	Path    string
	Outcome Outcome
	Reason  Reason
	Error   string
}

// Failed reports whether any part of the reload was refused.
func (r ReloadResult) Failed() bool {
	if r.CA.Outcome == Failed {
		return true
	}
	for _, p := range r.Pairs {
		if p.Outcome == Failed {
			return true
		}
	}
	return false
}

// Status is the TLS state of a node: what is served, what is on disk and
// how the last checks went. It is the answer of GET /v1/tls/status.
type Status struct {
	Pairs     []PairStatus
	CA        CAStatus
	LastCheck time.Time
	// EffectiveExpiry is the earliest effective expiry of the served pairs.
	EffectiveExpiry time.Time
}

// PairStatus describes the served certificate of one pair and the state of
// its files.
type PairStatus struct {
	Cert string
	Key  string
	CertificateInfo
	// EffectiveExpiry is the earliest NotAfter of the verified chain.
	EffectiveExpiry time.Time
	KeyAlgorithm    string

	LastCheck           time.Time
	LastReload          time.Time // the last check that succeeded: a candidate accepted or the files unchanged
	LastRotation        time.Time // the last time a new certificate was swapped in (or loaded at start)
	LastError           string
	LastErrorReason     Reason
	ConsecutiveFailures int
	DiffersFromDisk     bool
}

// CertificateInfo identifies one certificate.
type CertificateInfo struct {
	Subject     string
	SANs        []string
	Issuer      string
	Serial      string // hexadecimal
	Fingerprint string // SHA-256 of the DER, hexadecimal
	NotBefore   time.Time
	NotAfter    time.Time
}

// CAStatus describes the served CA bundle and the state of its files.
type CAStatus struct {
	Path                string
	Certificates        []CertificateInfo
	LastCheck           time.Time
	LastReload          time.Time
	LastError           string
	LastErrorReason     Reason
	ConsecutiveFailures int
	DiffersFromDisk     bool
}

// Status returns the TLS state of the node: what is served, whether it
// matches the files on disk and how the last checks went.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap.Load() // swapped under mu with the bookkeeping
	st := Status{LastCheck: m.lastCheck}
	for i, c := range s.pairs {
		f := m.pairs[i]
		st.Pairs = append(st.Pairs, PairStatus{
			Cert:                c.pair.Cert,
			Key:                 c.pair.Key,
			CertificateInfo:     certificateInfo(c.leaf),
			EffectiveExpiry:     c.expiry,
			KeyAlgorithm:        c.algorithm,
			LastCheck:           f.lastCheck,
			LastReload:          f.lastReload,
			LastRotation:        f.lastRotation,
			LastError:           f.lastErr,
			LastErrorReason:     f.lastReason,
			ConsecutiveFailures: f.failures,
			DiffersFromDisk:     f.differs,
		})
		if st.EffectiveExpiry.IsZero() || c.expiry.Before(st.EffectiveExpiry) {
			st.EffectiveExpiry = c.expiry
		}
	}
	st.CA = CAStatus{
		Path:                s.ca.path,
		LastCheck:           m.ca.lastCheck,
		LastReload:          m.ca.lastReload,
		LastError:           m.ca.lastErr,
		LastErrorReason:     m.ca.lastReason,
		ConsecutiveFailures: m.ca.failures,
		DiffersFromDisk:     m.ca.differs,
	}
	for _, c := range s.ca.certs {
		st.CA.Certificates = append(st.CA.Certificates, certificateInfo(c))
	}
	return st
}

func certificateInfo(c *x509.Certificate) CertificateInfo {
	sum := sha256.Sum256(c.Raw)
	return CertificateInfo{
		Subject:     c.Subject.String(),
		SANs:        sans(c),
		Issuer:      c.Issuer.String(),
		Serial:      c.SerialNumber.Text(16),
		Fingerprint: hex.EncodeToString(sum[:]),
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
	}
}

// Metrics are the figures a Manager exports; package tlsmetrics turns them
// into Prometheus metrics.
type Metrics struct {
	// NotAfter is the earliest effective expiry of the served pairs.
	NotAfter time.Time
	// Reloads counts reload runs by outcome: "unchanged", "reloaded" or
	// "failed" (a run in which anything was refused).
	Reloads map[Outcome]uint64
	// ConsecutiveFailures counts the failed reload runs since the last
	// one without failure.
	ConsecutiveFailures int
	// LastReload is the end of the last reload run without failure (or
	// the start).
	LastReload time.Time
	// DiffersFromDisk is whether any served pair or the CA bundle differs
	// from the files on disk.
	DiffersFromDisk bool
	// HandshakeFailures counts failed handshakes by listener.
	HandshakeFailures map[string]uint64
}

// Metrics returns the current figures.
func (m *Manager) Metrics() Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap.Load() // swapped under mu with the bookkeeping
	mt := Metrics{
		Reloads: map[Outcome]uint64{
			Unchanged: m.runs.unchanged,
			Reloaded:  m.runs.reloaded,
			Failed:    m.runs.failed,
		},
		ConsecutiveFailures: m.runs.consecutiveFailures,
		LastReload:          m.runs.lastSuccess,
		DiffersFromDisk:     m.ca.differs,
		HandshakeFailures:   maps.Clone(m.handshake),
	}
	for i, c := range s.pairs {
		if mt.NotAfter.IsZero() || c.expiry.Before(mt.NotAfter) {
			mt.NotAfter = c.expiry
		}
		mt.DiffersFromDisk = mt.DiffersFromDisk || m.pairs[i].differs
	}
	return mt
}

// Served returns the DER of what is served now: for each pair its chain
// (leaf first, as in its file) and the certificates of the CA bundle. The
// node puts them in its report to the cluster, so that the other nodes can
// verify its chain against their bundles and theirs against its own. The
// slices are copies.
func (m *Manager) Served() (chains [][][]byte, ca [][]byte) {
	s := m.snap.Load()
	for _, c := range s.pairs {
		chain := make([][]byte, len(c.cert.Certificate))
		for i, der := range c.cert.Certificate {
			chain[i] = slices.Clone(der)
		}
		chains = append(chains, chain)
	}
	for _, c := range s.ca.certs {
		ca = append(ca, slices.Clone(c.Raw))
	}
	return chains, ca
}
