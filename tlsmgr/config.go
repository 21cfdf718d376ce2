package tlsmgr

import (
	"crypto/tls"
	"log/slog"
	"time"
)

// Defaults of Config.
const (
	DefaultReloadInterval = 60 * time.Minute
	DefaultWarnBefore     = 48 * time.Hour
	DefaultWatchDebounce  = 500 * time.Millisecond

	// ClockSkew is how far in the future a certificate's NotBefore may lie
	// and still be accepted: a CA whose clock runs a little ahead must not
	// keep a fresh certificate from being served.
	ClockSkew = 5 * time.Minute
)

// AEADSuites are the TLS 1.2 cipher suites the node offers and accepts:
// forward secrecy (ECDHE) and authenticated encryption (GCM, ChaCha20-Poly1305)
// only, none of the CBC or static-RSA suites that Go still enables by
// default. TLS 1.3 has its own fixed, all-AEAD list.
var AEADSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Pair names the PEM files of one certificate and its private key. Cert may
// hold the leaf followed by its intermediates.
type Pair struct {
	Cert string `json:"cert" yaml:"cert"`
	Key  string `json:"key" yaml:"key"`
}

// Config says what a Manager serves and how it watches it.
type Config struct {
	// Certs are the node's certificate pairs. Several pairs are served by
	// SNI; the first is the default and the one presented on dials.
	Certs []Pair

	// CA is a PEM file, or a directory of PEM files, of the CA
	// certificates that node certificates and peers are verified against.
	CA string

	// Host is the node's advertised host name or IP address. Every pair
	// must name it in its SANs. Empty skips the check.
	Host string

	// PeerHost is the host of the node's inter-node address (its
	// advertised peer address), when it differs from Host: every pair must
	// name it too, since peers dial it. Empty skips the check.
	PeerHost string

	// MinVersion is the oldest TLS version the API listener accepts:
	// tls.VersionTLS12 (the default) or tls.VersionTLS13. On TLS 1.2 only
	// the AEAD suites with ECDHE key exchange are offered (AEADSuites).
	MinVersion uint16

	// VerifyClients makes the API listener also require that client
	// certificates, when given, chain to the CA bundle.
	VerifyClients bool

	// ReloadInterval is the period of the reload timer (default 60m). A
	// little jitter is added to every period.
	ReloadInterval time.Duration

	// WarnBefore is how long before the effective expiry a warning is
	// logged at every check (default 48h).
	WarnBefore time.Duration

	// WatchDebounce is how long file events must be quiet before a reload
	// runs (default 500ms).
	WatchDebounce time.Duration

	// Logger receives warnings and reload records (default slog.Default()).
	Logger *slog.Logger

	// Clock is the source of time and timers (default: the real clock).
	// Tests inject a fake one.
	Clock Clock
}

func (c Config) withDefaults() Config {
	if c.ReloadInterval <= 0 {
		c.ReloadInterval = DefaultReloadInterval
	}
	if c.WarnBefore <= 0 {
		c.WarnBefore = DefaultWarnBefore
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.WatchDebounce <= 0 {
		c.WatchDebounce = DefaultWatchDebounce
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = RealClock()
	}
	return c
}
