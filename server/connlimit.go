package server

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minkms/minkms/kms"
)

// The API listener's connection limits (limits.max_connections,
// limits.max_connections_per_ip, limits.unauthenticated_idle_timeout).
//
// A connection costs a file descriptor and some 40 KB of memory whether or
// not its client ever authenticates, and a node shares its descriptors with
// raft: a flood of idle API connections must neither exhaust them nor
// starve the inter-node listener. So the API listener is wrapped in a
// connLimiter below the TLS listener: a connection over a cap is closed as
// soon as it is accepted, before its TLS handshake costs anything, and a
// connection that has not made an authenticated request is closed after a
// short idle time. Only authenticated connections get the http.Server's own
// IdleTimeout.

// Reasons of minkms_api_connections_refused_total.
const (
	refusedMaxConnections = "max_connections"
	refusedMaxPerIP       = "max_connections_per_ip"
)

// connReserve is how many file descriptors of RLIMIT_NOFILE are kept for
// everything but API connections when limits.max_connections is derived
// from it. What a node needs besides its API connections, in a cluster of
// at most MaxBootstrapExpect (9) nodes:
//   - the inter-node listener and its handshakes in flight (at most
//     peernet.DefaultMaxHandshakes, 64);
//   - raft's transport: a pool of up to 3 streams to each of 8 peers, and
//     as many from each of them (about 50);
//   - the internal RPC: the client keeps up to 64 idle connections per peer
//     and more while writes are forwarded, and a leader serves those of
//     every follower (8 × 64 = 512 at the idle ceiling);
//   - state.db, raft.db, snapshots being written or read, certificate and
//     config files and their watchers, the epoll descriptor, standard
//     streams (a few dozen).
//
// That is about 650 at worst; 1024 leaves a margin. With a small limit the
// reserve is half of it, so that the API keeps the other half.
const connReserve = 1024

// Without an open-file limit to go by (a platform without getrlimit), the
// default cap is fallbackMaxConnections; a derived default is at most
// maxDefaultConnections (an unlimited RLIMIT_NOFILE would otherwise mean no
// cap at all).
const (
	fallbackMaxConnections = 4096
	maxDefaultConnections  = 1 << 20
)

// DefaultMaxConnections returns the default of limits.max_connections for
// a process whose RLIMIT_NOFILE soft limit is nofile: nofile less the
// descriptors kept for raft, the internal RPC and the node's files
// (connReserve, or half of nofile when that is small). 0 stands for an
// unknown limit.
func DefaultMaxConnections(nofile uint64) int {
	if nofile == 0 {
		return fallbackMaxConnections
	}
	reserve := min(connReserve, nofile/2)
	return int(min(nofile-reserve, maxDefaultConnections))
}

// connLimits are the settings of a connLimiter.
type connLimits struct {
	Max        int           // open connections at most, at least 1
	MaxPerIP   int           // open connections from one remote address at most; 0 for no cap
	UnauthIdle time.Duration // how long a connection without an authenticated request may stay idle
}

// apiConnLimits returns the limits of the API listener from the config:
// max_connections derived from the open-file limit unless set. It logs
// what it chose, and warns when a configured cap leaves raft less than
// connReserve descriptors.
func apiConnLimits(l LimitsConfig, log *slog.Logger) connLimits {
	// The Go runtime raises the soft RLIMIT_NOFILE to the hard limit (less
	// one) when the process starts (package syscall, since Go 1.19), so the
	// soft limit read here already is the highest the process can have.
	nofile, _ := openFileLimit()
	derived := DefaultMaxConnections(nofile)
	cl := connLimits{Max: l.MaxConnections, MaxPerIP: l.MaxConnectionsPerIP, UnauthIdle: l.UnauthenticatedIdleTimeout}
	if cl.Max <= 0 {
		cl.Max = derived
	} else if nofile > 0 && cl.Max > derived {
		log.Warn("limits.max_connections leaves fewer file descriptors than recommended for raft and the node's files: a flood of API connections could starve them; raise the open-file limit (LimitNOFILE) or lower limits.max_connections",
			slog.Int("max_connections", cl.Max), slog.Uint64("open_file_limit", nofile), slog.Int("recommended_max", derived))
	}
	if cl.UnauthIdle <= 0 {
		cl.UnauthIdle = DefaultUnauthenticatedIdleTimeout
	}
	log.Info("API connections are limited",
		slog.Int("max_connections", cl.Max), slog.Int("max_connections_per_ip", cl.MaxPerIP),
		slog.Duration("unauthenticated_idle_timeout", cl.UnauthIdle), slog.Uint64("open_file_limit", nofile))
	return cl
}

// refusalLogInterval is how often at most a refused connection is logged;
// the metric counts every one.
const refusalLogInterval = time.Minute

// connLimiter is a net.Listener that holds the API's connection limits.
// Its ConnState and ConnContext methods belong on the http.Server that
// serves it, and markAuthenticated in the middleware that authenticates.
type connLimiter struct {
	net.Listener
	limits connLimits
	log    *slog.Logger

	mu    sync.Mutex
	open  int
	perIP map[string]int

	refused   *prometheus.CounterVec
	gauge     prometheus.GaugeFunc
	lastWarn  atomic.Int64 // unix nanoseconds of the last refusal logged
	unlogged  atomic.Int64 // refusals since then
	idleClose atomic.Int64 // connections closed for idling unauthenticated (for tests)
}

func newConnLimiter(inner net.Listener, limits connLimits, log *slog.Logger) *connLimiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &connLimiter{Listener: inner, limits: limits, log: log, perIP: make(map[string]int)}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "minkms_api_connections_refused_total",
		Help: "Client API connections closed as soon as they were accepted, by the limit they would have exceeded.",
	}, []string{"reason"})
	for _, reason := range []string{refusedMaxConnections, refusedMaxPerIP} {
		l.refused.WithLabelValues(reason) // shown as 0 before the first
	}
	l.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "minkms_api_connections",
		Help: "Open client API connections (at most limits.max_connections).",
	}, func() float64 { return float64(l.Open()) })
	return l
}

// collectors returns the limiter's metrics, for the server's registry.
func (l *connLimiter) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.refused, l.gauge}
}

// Open returns the number of open connections.
func (l *connLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Accept returns the next connection within the limits; those over a limit
// are closed at once (with a reset, so that they leave nothing behind) and
// counted. It returns an error only when the listener's Accept does.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		reason := l.admit(ip)
		if reason == "" {
			return &trackedConn{Conn: c, limiter: l, ip: ip}, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		l.refuse(reason, ip)
	}
}

// admit counts a connection from ip in, or returns the limit it would exceed.
func (l *connLimiter) admit(ip string) (reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.limits.Max:
		return refusedMaxConnections
	case l.limits.MaxPerIP > 0 && l.perIP[ip] >= l.limits.MaxPerIP:
		return refusedMaxPerIP
	}
	l.open++
	l.perIP[ip]++
	return ""
}

// release counts a connection from ip out.
func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// refuse counts a refused connection, and logs it unless one was logged
// within refusalLogInterval.
func (l *connLimiter) refuse(reason, ip string) {
	l.refused.WithLabelValues(reason).Inc()
	n := l.unlogged.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(refusalLogInterval) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.unlogged.Add(-n)
	limit := l.limits.Max
	if reason == refusedMaxPerIP {
		limit = l.limits.MaxPerIP
	}
	l.log.Warn("Client API connections refused: limits."+reason+" reached; see minkms_api_connections_refused_total",
		slog.String("reason", reason), slog.Int("limit", limit), slog.String("remote_ip", ip),
		slog.Int64("refused_since_last_warning", n))
}

func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr()
	if addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

// ConnContext puts the connection into the contexts of its requests, for
// markAuthenticated. It is the http.Server's ConnContext.
func (l *connLimiter) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc := trackedOf(c); tc != nil {
		return context.WithValue(ctx, trackedConnKey{}, tc)
	}
	return ctx
}

// ConnState runs the unauthenticated idle timer: it starts when a
// connection is new (until its first request arrives, the TLS handshake
// included) or idle between requests, unless the connection has made an
// authenticated request, and stops while a request runs. It is the
// http.Server's ConnState.
func (l *connLimiter) ConnState(c net.Conn, state http.ConnState) {
	tc := trackedOf(c)
	if tc == nil {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		if !tc.authenticated.Load() {
			tc.armIdle(l.limits.UnauthIdle)
		}
	default:
		tc.disarmIdle()
	}
}

type trackedConnKey struct{}

// markAuthenticated records that the connection of the request in ctx made
// an authenticated request: from now on it idles as long as the
// http.Server allows. The authentication middleware calls it.
func markAuthenticated(ctx context.Context) {
	if tc, ok := ctx.Value(trackedConnKey{}).(*trackedConn); ok {
		tc.authenticated.Store(true)
	}
}

// connIdentity is the identity of a connection's client certificate.
type connIdentity struct {
	cert *x509.Certificate
	id   kms.Identity
}

// identityOf returns kms.IdentityOf(cert) for the client certificate of
// the request in ctx, hashed once per connection: a connection's peer
// certificate never changes (TLS 1.3 has no renegotiation, and Go's server
// refuses it in TLS 1.2), so its identity is kept with the connection and
// reused while the request presents the very same certificate.
func identityOf(ctx context.Context, cert *x509.Certificate) kms.Identity {
	tc, ok := ctx.Value(trackedConnKey{}).(*trackedConn)
	if !ok {
		return kms.IdentityOf(cert)
	}
	if ci := tc.identity.Load(); ci != nil && ci.cert == cert {
		return ci.id
	}
	id := kms.IdentityOf(cert)
	tc.identity.Store(&connIdentity{cert: cert, id: id})
	return id
}

// trackedOf returns the trackedConn under c (a *tls.Conn or the
// trackedConn itself), or nil.
func trackedOf(c net.Conn) *trackedConn {
	for range 4 {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// trackedConn is a connection the limiter counts until it is closed.
type trackedConn struct {
	net.Conn
	limiter       *connLimiter
	ip            string
	authenticated atomic.Bool
	identity      atomic.Pointer[connIdentity] // identityOf's cache
	closeOnce     sync.Once

	mu    sync.Mutex
	timer *time.Timer // the unauthenticated idle timer, nil when stopped
	armed uint64      // generation of the timer that may close the connection; 0 for none
	gen   uint64
}

// Close closes the connection and counts it out, once.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.disarmIdle()
		c.limiter.release(c.ip)
	})
	return err
}

// armIdle (re)starts the idle timer: unless disarmIdle runs first, the
// connection is closed after d.
func (c *trackedConn) armIdle(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.gen++
	gen := c.gen
	c.armed = gen
	c.timer = time.AfterFunc(d, func() { c.idleExpired(gen) })
}

// disarmIdle stops the idle timer. A timer that already fired and has not
// closed the connection yet then leaves it open.
func (c *trackedConn) disarmIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.armed = 0
}

func (c *trackedConn) idleExpired(gen uint64) {
	c.mu.Lock()
	expired := c.armed == gen
	c.mu.Unlock()
	if !expired {
		return // a request arrived, or the timer was restarted
	}
	c.limiter.idleClose.Add(1)
	c.Close() // below TLS: at once, without a close_notify the client would not read anyway
}
