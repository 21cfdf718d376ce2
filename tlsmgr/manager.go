package tlsmgr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoCA is returned by New when Config.CA is empty: node certificates and
// peers are verified against the CA bundle, so there must be one.
var ErrNoCA = errors.New("tlsmgr: no CA bundle configured")

// Manager serves the TLS certificates of one node to the API listener, the
// inter-node listener and every outgoing dial, and keeps them fresh. It is
// safe for concurrent use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	snap atomic.Pointer[snapshot] // what is served; replaced whole, never mutated

	// reloading holds a value while a reload runs: reloads are serialized,
	// and one that waits for its turn gives up when its context ends.
	reloading chan struct{}
	// reloaded receives a value after every reload, so that Run resolves
	// the symlink chains again; a pending value stands for any number.
	reloaded chan struct{}

	mu        sync.Mutex // guards the bookkeeping below
	pairs     []fileState
	ca        fileState
	lastCheck time.Time
	runs      runCounters
	handshake map[string]uint64

	subsMu sync.Mutex
	subs   map[int]chan struct{}
	nextID int
}

// fileState is the bookkeeping of one pair or of the CA bundle.
type fileState struct {
	lastCheck, lastReload, lastRotation time.Time
	lastErr                             string
	lastReason                          Reason
	failures                            int
	differs                             bool
}

type runCounters struct {
	unchanged, reloaded, failed uint64
	consecutiveFailures         int
	lastSuccess                 time.Time
}

// snapshot is one immutable generation of everything served: the pairs, the
// CA pool and the TLS configs built from them. A handshake reads one
// snapshot, so it never sees a certificate of one generation with the pool
// of another.
type snapshot struct {
	pairs  []*candidate
	ca     *caBundle
	server *tls.Config // API listener
	peer   *tls.Config // inter-node listener
}

// New loads and validates every configured pair and the CA bundle. A node
// must not start with an invalid certificate: when anything is refused, New
// logs the reason and returns an error (wrapping a *ValidationError) that
// names the file and the reason.
func New(cfg Config) (*Manager, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Certs) == 0 {
		return nil, ErrNoCertificates
	}
	if cfg.CA == "" {
		return nil, ErrNoCA
	}
	m := &Manager{
		cfg:       cfg,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		pairs:     make([]fileState, len(cfg.Certs)),
		handshake: make(map[string]uint64),
		subs:      make(map[int]chan struct{}),
		reloaded:  make(chan struct{}, 1),
		reloading: make(chan struct{}, 1),
	}
	now := m.clock.Now()

	files, err := readCA(cfg.CA)
	var ca *caBundle
	if err == nil {
		ca, err = parseCA(cfg.CA, files)
	}
	if err != nil {
		m.logCAFailure(err)
		return nil, fmt.Errorf("tlsmgr: CA bundle: %w", err)
	}
	pairs := make([]*candidate, len(cfg.Certs))
	for i, p := range cfg.Certs {
		c, err := m.loadPair(p, ca, now)
		if err != nil {
			m.logPairFailure(p, err)
			return nil, fmt.Errorf("tlsmgr: certificate pair %d: %w", i+1, err)
		}
		pairs[i] = c
		m.pairs[i] = fileState{lastCheck: now, lastReload: now, lastRotation: now}
	}
	m.ca = fileState{lastCheck: now, lastReload: now, lastRotation: now}
	m.lastCheck = now
	m.runs.lastSuccess = now
	m.snap.Store(m.newSnapshot(pairs, ca))
	m.warnExpiry(pairs, now)
	return m, nil
}

// loadPair reads and validates one pair.
func (m *Manager) loadPair(p Pair, ca *caBundle, now time.Time) (*candidate, error) {
	f, err := readPair(p)
	if err != nil {
		return nil, err
	}
	defer f.clear()
	return validatePair(p, f, checkEnv{ca: ca, host: m.cfg.Host, peerHost: m.cfg.PeerHost, now: now})
}

func (m *Manager) newSnapshot(pairs []*candidate, ca *caBundle) *snapshot {
	certs := make([]tls.Certificate, len(pairs))
	for i, c := range pairs {
		certs[i] = c.cert
	}
	base := &tls.Config{
		MinVersion:   m.cfg.MinVersion,
		CipherSuites: AEADSuites,
		Certificates: certs, // served by SNI; the first is the default
		Time:         m.clock.Now,
	}
	server := base.Clone()
	server.ClientAuth = tls.RequestClientCert
	if m.cfg.VerifyClients {
		server.ClientAuth = tls.VerifyClientCertIfGiven
		server.ClientCAs = ca.pool
	}
	peer := base.Clone()
	peer.ClientAuth = tls.RequireAndVerifyClientCert
	peer.ClientCAs = ca.pool
	return &snapshot{pairs: pairs, ca: ca, server: server, peer: peer}
}

// ServerTLSConfig returns the config of the client API listener. Every
// handshake is served from the current snapshot (GetConfigForClient), so a
// reload needs no restart. API clients are asked for a certificate but it is
// not verified — they are authenticated by the hash of its public key —
// unless Config.VerifyClients is set; then a given certificate must chain to
// the CA bundle. NextProtos set on the returned config are carried into
// every handshake; set them before use and do not change them after.
func (m *Manager) ServerTLSConfig() *tls.Config {
	return m.dynamicServerConfig(func(s *snapshot) *tls.Config { return s.server })
}

// PeerServerTLSConfig returns the config of the inter-node listener: like
// ServerTLSConfig, but a client certificate that chains to the CA bundle is
// required.
func (m *Manager) PeerServerTLSConfig() *tls.Config {
	return m.dynamicServerConfig(func(s *snapshot) *tls.Config { return s.peer })
}

func (m *Manager) dynamicServerConfig(pick func(*snapshot) *tls.Config) *tls.Config {
	outer := &tls.Config{MinVersion: m.cfg.MinVersion, CipherSuites: AEADSuites}
	outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := pick(m.snap.Load())
		if len(outer.NextProtos) == 0 {
			return c, nil
		}
		c = c.Clone()
		c.NextProtos = outer.NextProtos
		return c, nil
	}
	return outer
}

// ClientTLSConfig returns the config of a dial to the peer serverName (its
// host name or IP address). The client certificate is the first pair of the
// snapshot current at the handshake; the server's chain is verified against
// the CA pool of the snapshot current at the handshake, for serverName (or,
// when it is empty, for the ServerName of the connection; when both are
// empty only the chain is verified). The returned config may be kept and
// reused across reloads.
func (m *Manager) ClientTLSConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   m.cfg.MinVersion,
		CipherSuites: AEADSuites,
		ServerName:   serverName,
		// The standard verification would pin the CA pool of this moment;
		// VerifyConnection verifies against the pool of the snapshot
		// current at each handshake instead.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &m.snap.Load().pairs[0].cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return m.verifyServer(cs, serverName)
		},
	}
}

func (m *Manager) verifyServer(cs tls.ConnectionState, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsmgr: peer presented no certificate")
	}
	if serverName == "" {
		serverName = cs.ServerName
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         m.snap.Load().ca.pool,
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   m.clock.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tlsmgr: peer certificate: %w", err)
	}
	return nil
}

// Subscribe returns a channel that receives a value after each rotation —
// whenever a new certificate or CA bundle is served — so that long-lived
// connections (the raft transport's) can be recycled. Notifications never
// block the manager and coalesce: a slow reader sees one value for several
// rotations. Call cancel to stop them.
func (m *Manager) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.subsMu.Lock()
	id := m.nextID
	m.nextID++
	m.subs[id] = ch
	m.subsMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			m.subsMu.Lock()
			delete(m.subs, id)
			m.subsMu.Unlock()
		})
	}
}

func (m *Manager) notify() {
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default: // a notification is pending already
		}
	}
}

// HandshakeFailed counts a failed TLS handshake on listener ("api", "peer"
// or "dial"), exported as minkms_tls_handshake_failures_total{listener}. The
// server calls it from its http.Server ErrorLog or handshake hooks.
func (m *Manager) HandshakeFailed(listener string) {
	m.mu.Lock()
	m.handshake[listener]++
	m.mu.Unlock()
}
