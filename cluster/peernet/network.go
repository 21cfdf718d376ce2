package peernet

import (
	"context"
	"crypto/hmac"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ALPN protocols of the inter-node listener.
const (
	ProtoRaft = "minkms-raft/1" // hashicorp/raft NetworkTransport streams
	ProtoRPC  = "minkms-rpc/1"  // the internal RPC: HTTP/1.1, JSON bodies
)

// Defaults of Config.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxHandshakes    = 64
	DefaultRecyclePause     = time.Second
)

// TLS is what the peer network needs of the node's TLS manager;
// *tlsmgr.Manager satisfies it.
type TLS interface {
	// PeerServerTLSConfig returns the config of the inter-node listener; it
	// must require a client certificate that chains to the CA bundle.
	PeerServerTLSConfig() *tls.Config
	// ClientTLSConfig returns the config of a dial to serverName; it must
	// verify the server's chain against the CA bundle and the name.
	ClientTLSConfig(serverName string) *tls.Config
	// Subscribe returns a channel that receives a value after every
	// certificate rotation, and a function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
	// HandshakeFailed counts a failed TLS handshake ("peer" or "dial").
	HandshakeFailed(listener string)
}

// Hello is what a node says about itself at the start of every connection.
type Hello struct {
	NodeID    string
	ClusterID string // "" while the node is in no cluster yet
	PeerAddr  string // host:port that peers dial; the certificate must name its host
}

// Peer is the other end of a proven connection.
type Peer struct {
	Hello
	Cert       *x509.Certificate // its leaf certificate
	RemoteAddr net.Addr
	Proto      string // ProtoRaft or ProtoRPC
}

// Config configures a Network.
type Config struct {
	// Self returns this node's Hello, now (the cluster id may appear
	// later). Required.
	Self func() Hello
	// ProofKey is the key of the proof, from ProofKey(rootKey). It is
	// copied, and the copy is zeroed on Close. Required.
	ProofKey []byte
	// TLS hands out the certificates. Required.
	TLS TLS
	// Admit is called after a successful proof, on both sides (dialed
	// tells which). An error refuses the connection; its text is sent to
	// the other side. Nil admits every proven peer.
	Admit func(p Peer, dialed bool) error
	// Logger receives refusals (WARN) and connection events (DEBUG).
	// Default slog.Default().
	Logger *slog.Logger
	// HandshakeTimeout bounds the TLS handshake and the proof of one
	// connection (default 5s).
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the handshakes in flight (default 64); one
	// remote host may hold at most a quarter of them. Connections over the
	// bound are closed at once.
	MaxHandshakes int
	// RecyclePause is the pause between two peers when the raft
	// connections are recycled after a certificate rotation (default 1s).
	RecyclePause time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.RecyclePause <= 0 {
		c.RecyclePause = DefaultRecyclePause
	}
	return c
}

// Stats are counters of a Network, for metrics and tests.
type Stats struct {
	HandshakesDropped uint64 // accepted connections closed at once: too many handshakes in flight
	HandshakesFailed  uint64 // TLS handshakes that failed or timed out, both directions
	Refused           uint64 // proofs that failed or were refused, both directions
	RaftConns         int    // raft connections open now, dialed and accepted
	RaftRecycled      uint64 // raft connections closed after a certificate rotation
}

// Network is the inter-node listener of one node and its dialer: raft
// streams (StreamLayer) and the internal RPC (Handle, Call) over mutually
// proven TLS connections. It is safe for concurrent use.
type Network struct {
	cfg       Config
	log       *slog.Logger
	ln        net.Listener
	serverTLS *tls.Config
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	keyMu sync.RWMutex
	key   []byte // the proof key; nil after Close

	hsMu      sync.Mutex
	hsTotal   int
	hsPerHost map[string]int
	hsConns   map[net.Conn]struct{} // in flight, closed by Close

	raftQueue chan *peerConn

	connMu sync.Mutex
	raft   map[string]map[*peerConn]struct{} // by remote node id
	gen    atomic.Uint64                     // rotations seen

	rpc rpcState

	observed observations

	dropped, hsFailed, refused, recycled atomic.Uint64
	unsubscribe                          func()
}

// Listen binds address and starts accepting inter-node connections.
func Listen(address string, cfg Config) (*Network, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Self == nil:
		return nil, errors.New("peernet: Config.Self is required")
	case cfg.TLS == nil:
		return nil, errors.New("peernet: Config.TLS is required")
	case len(cfg.ProofKey) < 16:
		return nil, errors.New("peernet: Config.ProofKey is missing or too short")
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("peernet: %w", err)
	}
	n := &Network{
		cfg:       cfg,
		log:       cfg.Logger,
		ln:        ln,
		serverTLS: serverConfig(cfg.TLS.PeerServerTLSConfig()),
		closed:    make(chan struct{}),
		key:       append([]byte(nil), cfg.ProofKey...),
		hsPerHost: make(map[string]int),
		hsConns:   make(map[net.Conn]struct{}),
		raftQueue: make(chan *peerConn),
		raft:      make(map[string]map[*peerConn]struct{}),
	}
	n.startRPC()
	rotations, unsubscribe := cfg.TLS.Subscribe()
	n.unsubscribe = unsubscribe
	n.wg.Add(2)
	go n.acceptLoop()
	go n.watchRotations(rotations)
	return n, nil
}

// serverConfig wraps the listener config of the TLS manager: every handshake
// takes the manager's current config and restricts it to TLS 1.3 and the two
// protocols of this listener.
func serverConfig(base *tls.Config) *tls.Config {
	restrict := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.GetConfigForClient = nil
		c.MinVersion = tls.VersionTLS13
		c.NextProtos = []string{ProtoRaft, ProtoRPC}
		if c.ClientAuth < tls.RequireAndVerifyClientCert {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ProtoRaft, ProtoRPC},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base
			if base.GetConfigForClient != nil {
				got, err := base.GetConfigForClient(hello)
				if err != nil {
					return nil, err
				}
				if got != nil {
					c = got
				}
			}
			return restrict(c), nil
		},
	}
}

// Addr returns the bound address.
func (n *Network) Addr() net.Addr { return n.ln.Addr() }

// Stats returns the counters.
func (n *Network) Stats() Stats {
	n.connMu.Lock()
	conns := 0
	for _, set := range n.raft {
		conns += len(set)
	}
	n.connMu.Unlock()
	return Stats{
		HandshakesDropped: n.dropped.Load(),
		HandshakesFailed:  n.hsFailed.Load(),
		Refused:           n.refused.Load(),
		RaftConns:         conns,
		RaftRecycled:      n.recycled.Load(),
	}
}

// Close stops the listener, closes every connection, ends the RPC service
// and zeroes the proof key. Dials and calls fail with ErrClosed afterwards.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		n.unsubscribe()
		n.ln.Close()
		n.hsMu.Lock()
		for c := range n.hsConns {
			c.Close()
		}
		n.hsMu.Unlock()
		n.stopRPC()
		n.closeRaftConns(func(*peerConn) bool { return true })
		n.wg.Wait()
		n.keyMu.Lock()
		clear(n.key)
		n.key = nil
		n.keyMu.Unlock()
	})
	return nil
}

func (n *Network) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// mac computes a proof MAC with the proof key, or fails after Close.
func (n *Network) mac(role string, ekm []byte, hellos ...Hello) ([]byte, error) {
	n.keyMu.RLock()
	defer n.keyMu.RUnlock()
	if n.key == nil {
		return nil, ErrClosed
	}
	return proofMAC(n.key, role, ekm, hellos...), nil
}

// acceptLoop only accepts: every handshake runs in its own goroutine, so a
// connection that never speaks holds up nothing but its own slot.
func (n *Network) acceptLoop() {
	defer n.wg.Done()
	var delay time.Duration
	for {
		raw, err := n.ln.Accept()
		if err != nil {
			if n.isClosed() {
				return
			}
			// Out of file descriptors and the like: back off a little.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			n.log.Warn("Inter-node listener cannot accept connections", slog.Any("error", err))
			select {
			case <-time.After(delay):
			case <-n.closed:
				return
			}
			continue
		}
		delay = 0
		host := remoteHost(raw.RemoteAddr())
		if !n.startHandshake(raw, host) {
			n.dropped.Add(1)
			raw.Close()
			n.log.Debug("Too many inter-node handshakes in flight; connection closed",
				slog.String("remote", raw.RemoteAddr().String()))
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer n.endHandshake(raw, host)
			n.serveConn(raw)
		}()
	}
}

func remoteHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (n *Network) startHandshake(raw net.Conn, host string) bool {
	perHost := max(1, n.cfg.MaxHandshakes/4)
	n.hsMu.Lock()
	defer n.hsMu.Unlock()
	if n.isClosed() || n.hsTotal >= n.cfg.MaxHandshakes || n.hsPerHost[host] >= perHost {
		return false
	}
	n.hsTotal++
	n.hsPerHost[host]++
	n.hsConns[raw] = struct{}{}
	return true
}

func (n *Network) endHandshake(raw net.Conn, host string) {
	n.hsMu.Lock()
	defer n.hsMu.Unlock()
	n.hsTotal--
	if n.hsPerHost[host]--; n.hsPerHost[host] <= 0 {
		delete(n.hsPerHost, host)
	}
	delete(n.hsConns, raw)
}

// serveConn runs the TLS handshake and the acceptor's side of the proof,
// then hands the connection to raft or to the RPC server.
func (n *Network) serveConn(raw net.Conn) {
	remote := raw.RemoteAddr().String()
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	raw.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	tc := tls.Server(raw, n.serverTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		n.observeFailure("", remoteHost(raw.RemoteAddr()), false, err)
		n.hsFailed.Add(1)
		n.cfg.TLS.HandshakeFailed("peer")
		level := slog.LevelWarn
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || errors.Is(err, ErrClosed) {
			level = slog.LevelDebug // junk or a scanner; counted, not worth a warning each
		}
		n.log.Log(ctx, level, "Refused an inter-node connection: TLS handshake failed",
			slog.String("remote", remote), slog.Any("error", err))
		raw.Close()
		return
	}
	cs := tc.ConnectionState()
	peer, err := n.acceptProof(tc, cs)
	if err != nil {
		n.observeFailure(provenID(peer, err), remoteHost(raw.RemoteAddr()), false, err)
		n.refused.Add(1)
		n.log.Warn("Refused an inter-node connection",
			slog.String("remote", remote), slog.String("node", peer.NodeID), slog.Any("error", err))
		if !errors.Is(err, ErrRefused) && !isNetErr(err) {
			writeFrame(tc, errorFrame(err))
		}
		tc.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	n.observeProven(peer, "")
	pc := n.newPeerConn(tc, raw, peer)
	n.log.Debug("Accepted an inter-node connection", slog.String("remote", remote),
		slog.String("node", peer.NodeID), slog.String("proto", peer.Proto))
	switch peer.Proto {
	case ProtoRaft:
		n.handToRaft(pc)
	case ProtoRPC:
		n.handToRPC(pc)
	}
}

// acceptProof is the acceptor's side of the proof. The returned Peer carries
// the claimed Hello also on failure, for the log.
func (n *Network) acceptProof(tc *tls.Conn, cs tls.ConnectionState) (Peer, error) {
	peer := Peer{RemoteAddr: tc.RemoteAddr(), Proto: cs.NegotiatedProtocol}
	if peer.Proto != ProtoRaft && peer.Proto != ProtoRPC {
		return peer, fail(ErrProtocol, nil, "peernet: no inter-node protocol negotiated (ALPN %q)", peer.Proto)
	}
	if len(cs.PeerCertificates) == 0 {
		return peer, fail(ErrCertificate, nil, "peernet: no client certificate")
	}
	peer.Cert = cs.PeerCertificates[0]
	ekm, err := exportEKM(cs)
	if err != nil {
		return peer, err
	}
	f, err := readFrame(tc)
	if err != nil {
		return peer, err
	}
	peer.Hello = f.hello()
	want, err := n.mac(roleDialer, ekm, peer.Hello)
	if err != nil {
		return peer, err
	}
	if !hmac.Equal(want, f.MAC) {
		return peer, refuse(ErrRootKey, nil, "the dialing node does not hold this cluster's root key",
			"peernet: node %q does not hold this cluster's root key", peer.NodeID)
	}
	self := n.cfg.Self()
	if err := checkPeer(peer, self); err != nil {
		return peer, err
	}
	if n.cfg.Admit != nil {
		if err := n.cfg.Admit(peer, false); err != nil {
			return peer, fail(ErrNotAdmitted, err, "%v", err)
		}
	}
	mac, err := n.mac(roleAcceptor, ekm, peer.Hello, self)
	if err != nil {
		return peer, err
	}
	if err := writeFrame(tc, helloFrame(self, mac)); err != nil {
		return peer, err
	}
	f, err = readFrame(tc)
	if err != nil {
		return peer, err
	}
	if !f.OK {
		return peer, refusal(fmt.Sprintf("node %q", peer.NodeID), f.Code, f.Error)
	}
	return peer, nil
}

// checkPeer holds the checks both sides make of the other's proven Hello.
func checkPeer(p Peer, self Hello) error {
	if p.NodeID == "" {
		return fail(ErrProtocol, nil, "peernet: the node did not say its id")
	}
	if p.ClusterID != "" && self.ClusterID != "" && p.ClusterID != self.ClusterID {
		return fail(ErrOtherCluster, nil, "node %q belongs to cluster %s, not %s", p.NodeID, p.ClusterID, self.ClusterID)
	}
	host, _, err := net.SplitHostPort(p.PeerAddr)
	if err != nil {
		return fail(ErrProtocol, err, "node %q announces no valid peer address (%q)", p.NodeID, p.PeerAddr)
	}
	if err := p.Cert.VerifyHostname(host); err != nil {
		return fail(ErrCertificate, err, "the certificate of node %q does not name its peer host %s", p.NodeID, host)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// handToRaft queues a proven raft connection for the stream layer's Accept.
// Nobody accepting (raft not started yet, or stopped) is no error of the
// peer's: the connection is closed after a while and raft dials again.
func (n *Network) handToRaft(pc *peerConn) {
	t := time.NewTimer(n.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case n.raftQueue <- pc:
	case <-t.C:
		n.log.Debug("No raft transport accepted an inter-node stream; closed",
			slog.String("remote", pc.RemoteAddr().String()), slog.String("node", pc.peer.NodeID))
		pc.Close()
	case <-n.closed:
		pc.Close()
	}
}
