package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/server/journal"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/tlsmetrics"
)

// Timeouts of the node's life cycle and of its HTTP server.
const (
	startTimeout      = 30 * time.Second // for a raft leader and kms.Init at start
	shutdownTimeout   = 10 * time.Second // for requests in flight at shutdown
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second // the most a body of at most 1 MiB may take (the request timeout if shorter)
	writeSlack        = 10 * time.Second // added to the request timeout for writing the answer
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// StateFile is the name of the state file in the data directory.
const StateFile = "state.db"

// ErrDamaged is returned (wrapped) by New when the state file failed its
// consistency check after an unclean stop.
var ErrDamaged = errors.New("damaged state file")

// uncleanMarker is the file a running node keeps in its data directory and
// removes when it stops cleanly: found at start, it means the last run
// ended in a crash, a kill or a power loss, and the state file is checked.
const uncleanMarker = "node.running"

// ErrRootKey is returned (wrapped) by New when the root key cannot be read
// or does not open the node's state.
var ErrRootKey = errors.New("root key")

// Server is one minkms node: its state, its raft member, the key
// management service, its TLS certificates and the client API listener.
type Server struct {
	cfg     *Config
	log     *slog.Logger
	started time.Time

	db   *storage.DB
	node atomic.Pointer[cluster.Node]
	peer *peernet.Network
	svc  *kms.Service
	// cached is svc for the FSM's hooks, which run before svc is made
	// (see openCluster).
	cached atomic.Pointer[kms.Service]
	certs  *tlsmgr.Manager
	conns  *connLimiter // the API's connection limits, below ln's TLS
	watch  *monitor     // evaluates the cluster's health periodically (monitor.go)
	ln     net.Listener
	http   *http.Server
	stalls *stallGuard // cuts off slow clients' requests
	// workers serve the HTTP/2 requests on goroutines that keep their
	// grown stacks (workers.go).
	workers *workers

	rootKeyCheck []byte          // to be written to the data directory once raft accepted it
	startCtx     context.Context // New's, for the steps of the start

	// hup receives SIGHUP from New to Close, so that a reload signal sent
	// while the node starts (waiting for a raft leader may take a while)
	// or stops does not end the process, whose default for SIGHUP is to
	// exit. Run reloads the certificates on it.
	hup chan os.Signal

	// unsubscribeReport ends the certificate rotations' trigger of the
	// node's report (cluster.Config.ReportTrigger).
	unsubscribeReport func()
	// journal keeps the node's log and audit records for the log API;
	// audit writes the audit trail (logs.go, audit.go).
	journal     *journal.Journal
	audit       *auditTrail
	stopStreams func() // ends the log streams at shutdown

	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New opens a node as cfg describes, in this order: it reads the root key,
// opens the state (a state written under another root key is refused with
// an error wrapping ErrRootKey and storage.ErrWrongRootKey), loads the TLS
// certificates (a node does not start with an invalid one), binds the client
// API listener and the inter-node listener, and starts raft. It does not
// wait for a leader: formation and catching up happen in the background
// while Run serves, and /v1/health/ready answers 503 with the reason until
// the node is caught up with the leader.
//
// Run serves it; Close releases it. If New fails or ctx ends first,
// everything it opened is closed again. From New to Close the process
// catches SIGHUP, which Run answers with a certificate reload: a SIGHUP sent
// while the node starts or stops does not end it.
func New(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *Server, err error) {
	if cfg == nil {
		return nil, errors.New("server: no config")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(cfg.Admins) == 0 {
		logger.Warn("No cluster admins are configured: nobody can create enclaves, identities or policies on this node; name them under admins in the config file")
	}
	j, logger := journalOf(logger, cfg.Log)
	j.SetNode(cfg.Cluster.NodeID)
	s := &Server{cfg: cfg, log: logger, journal: j, started: time.Now(), hup: make(chan os.Signal, 1)}
	signal.Notify(s.hup, syscall.SIGHUP)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	steps := []struct {
		what string
		do   func() error
	}{
		{"state", s.openState},
		{"certificates", s.openCertificates},
		{"listeners", s.openListeners},
		{"raft", s.openCluster},
	}
	s.startCtx = ctx
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("starting the node (before %s): %w", step.what, err)
		}
		if err := step.do(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// openState reads the root key and opens the state file with it. The root
// key's check file, if it was missing, is written once raft has accepted
// the data directory (openCluster), so that a refused start leaves the
// directory as it was.
func (s *Server) openState() error {
	if err := s.checkAfterUncleanStop(filepath.Join(s.cfg.DataDir, StateFile)); err != nil {
		return err
	}
	var err error
	s.db, s.rootKeyCheck, err = openStateFile(s.cfg, storage.Options{})
	return err
}

// openStateFile reads the root key, checks it against the data directory's
// check file (or, when that and the state file are both gone, against the
// raft log and its snapshots) and opens the state file with it. The node at
// start and OpenOffline both open the state here. It writes nothing but
// the state file's own initialisation; when the check file is missing it
// returns the check value to write once the caller accepted the directory.
func openStateFile(cfg *Config, opts storage.Options) (db *storage.DB, pendingCheck []byte, err error) {
	key, err := cfg.RootKey.load()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	defer clear(key)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating the data directory: %w", err)
	}
	check, err := storage.RootKeyCheck(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	checked, err := verifyRootKeyCheck(cfg.DataDir, check)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cfg.DataDir, StateFile)
	if _, err := os.Stat(path); !checked && errors.Is(err, os.ErrNotExist) {
		// Neither the state file nor the check file is there: before
		// anything is written, check the key against what the raft log and
		// its snapshots carry, so that a state rebuilt from them is never
		// sealed under a wrong key.
		err := cluster.VerifyRootKey(cfg.DataDir, cluster.RootKeyVerifier{
			Sealed:    func(bucket, name string, sealed []byte) error { return storage.VerifySealed(key, bucket, name, sealed) },
			StateFile: func(p string) error { return storage.VerifyFile(key, p) },
		})
		if errors.Is(err, storage.ErrWrongRootKey) {
			return nil, nil, fmt.Errorf("%w: wrong root key: the raft log in %s was written under another root key, and the node refuses to start with this one: %w",
				ErrRootKey, filepath.Join(cfg.DataDir, "raft"), err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("checking the root key against the raft log: %w", err)
		}
	}
	db, err = storage.Open(path, key, opts)
	if errors.Is(err, storage.ErrWrongRootKey) {
		return nil, nil, fmt.Errorf("%w: the root key does not open the state in %s; it was created with another root key, and the node refuses to start with this one: %w", ErrRootKey, path, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening the state: %w", err)
	}
	if !checked {
		pendingCheck = check
	}
	return db, pendingCheck, nil
}

// checkAfterUncleanStop checks the state file when the last run of the
// node did not stop cleanly, in a process of its own.
func (s *Server) checkAfterUncleanStop(path string) error {
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, uncleanMarker)); err != nil {
		return nil
	}
	if _, err := os.Stat(path); err != nil || s.cfg.CheckStateFile == nil {
		return nil
	}
	s.log.Warn("The node did not stop cleanly last time; checking the state file", slog.String("file", path))
	start := time.Now()
	if err := s.cfg.CheckStateFile(s.startCtx, path); err != nil {
		return fmt.Errorf("%w: %w; the node did not stop cleanly last time and its state file is damaged: move %s aside and start the node again, it rebuilds the state from its raft log and snapshots (if those are damaged too, remove the node from the cluster, empty its data directory and let it join again; see minkms admin check and docs/deploy.md)",
			ErrDamaged, err, path)
	}
	s.log.Info("The state file is intact", slog.String("file", path), slog.Duration("took", time.Since(start)))
	return nil
}

// openCertificates loads the node's certificates.
func (s *Server) openCertificates() error {
	tc := s.cfg.TLSManagerConfig()
	tc.Logger = s.log.With(slog.String("component", "tls"))
	var err error
	s.certs, err = tlsmgr.New(tc)
	if err != nil {
		return fmt.Errorf("loading TLS certificates: %w", err)
	}
	return nil
}

// openListeners binds the client API listener and the inter-node listener.
// Nothing is served on the API listener before Run; peers may connect to
// the inter-node one at once (they wait for raft, which starts next).
func (s *Server) openListeners() error {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Address, err)
	}
	tlsConfig := s.certs.ServerTLSConfig()
	tlsConfig.NextProtos = []string{"h2", "http/1.1"} // offered on every handshake's config
	// Connections over the limits are closed before their TLS handshake;
	// plain HTTP on this port gets a JSON 400 (plainhttp.go).
	// The limiter must be the listener right below TLS: it finds its
	// connections again by the tls.Conn's NetConn.
	s.conns = newConnLimiter(plainHTTPListener{ln}, apiConnLimits(s.cfg.Limits, s.log), s.log)
	s.ln = tls.NewListener(s.conns, tlsConfig)

	key, err := s.cfg.RootKey.load()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	defer clear(key)
	proof, err := peernet.ProofKey(key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRootKey, err)
	}
	defer clear(proof)
	s.peer, err = peernet.Listen(s.cfg.Cluster.Address, peernet.Config{
		Self:     s.hello,
		ProofKey: proof,
		TLS:      s.certs,
		Admit:    s.admitPeer,
		Logger:   s.log.With(slog.String("component", "peer")),
	})
	if err != nil {
		return fmt.Errorf("listening for peers on %s: %w", s.cfg.Cluster.Address, err)
	}
	// With port 0 the node advertises the port it bound.
	if host, port, err := net.SplitHostPort(s.cfg.Cluster.AdvertisePeer); err == nil && port == "0" {
		_, bound, _ := net.SplitHostPort(s.peer.Addr().String())
		s.cfg.Cluster.AdvertisePeer = net.JoinHostPort(host, bound)
	}
	if host, port, err := net.SplitHostPort(s.cfg.Cluster.Advertise); err == nil && port == "0" {
		_, bound, _ := net.SplitHostPort(s.ln.Addr().String())
		s.cfg.Cluster.Advertise = net.JoinHostPort(host, bound)
	}
	return nil
}

// hello is what this node announces to its peers.
func (s *Server) hello() peernet.Hello {
	h := peernet.Hello{NodeID: s.cfg.Cluster.NodeID, PeerAddr: s.cfg.Cluster.AdvertisePeer}
	if n := s.node.Load(); n != nil {
		h.ClusterID = n.ClusterID()
	}
	return h
}

// admitPeer lets the cluster decide who may connect; before raft runs,
// every peer that proved the root key (and whose certificate names the
// host it announces, which peernet checks) is admitted.
func (s *Server) admitPeer(p peernet.Peer, dialed bool) error {
	if n := s.node.Load(); n != nil {
		return n.Admit(p, dialed)
	}
	return nil
}

// openCluster starts raft over the inter-node listener, and the key
// management service on top. Forming or joining a cluster, and catching up
// with it, go on in the background.
func (s *Server) openCluster() error {
	c := s.cfg.Cluster
	rotations, unsubscribe := s.certs.Subscribe()
	s.unsubscribeReport = unsubscribe
	node, err := cluster.Open(cluster.Config{
		NodeID:          c.NodeID,
		PeerAddr:        c.AdvertisePeer,
		APIAddr:         c.Advertise,
		DataDir:         s.cfg.DataDir,
		Store:           s.db,
		Logger:          s.log, // cluster adds component=raft
		Transport:       cluster.NewNetworkTransport(s.peer.StreamLayer(c.AdvertisePeer), s.log),
		RPC:             s.peer,
		Timing:          cluster.Timing(c.Raft),
		MaxStale:        c.MaxStale,
		AdminsDigest:    adminsDigest(s.cfg.Admins),
		Bootstrap:       c.Bootstrap,
		BootstrapExpect: c.BootstrapExpect,
		Join:            c.Join,
		OnLeader:        s.lead,
		// This node's report of itself and its certificates, written again
		// after every rotation; what it saw of its peers' certificates.
		Report:        s.nodeReport,
		ReportTrigger: rotations,
		Observations:  func() []health.Observation { return s.peer.Observations(c.NodeID) },
		// kms's cache is kept current by the FSM, before a change's
		// proposer is answered (kms.Service.Invalidate). Entries applied
		// before the service exists need nothing: its cache starts empty.
		OnApply: func(index uint64, changed []kv.Mutation) {
			if svc := s.cached.Load(); svc != nil {
				svc.Invalidate(index, changed)
			}
		},
		OnRestore: func(index uint64) {
			if svc := s.cached.Load(); svc != nil {
				svc.InvalidateAll(index)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	s.node.Store(node)
	node.Handle(methodTLSStatus, serveTLSStatus(s.certs)) // GET /v1/tls/status?node= on another node
	if err := os.WriteFile(filepath.Join(s.cfg.DataDir, uncleanMarker), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("marking the data directory in use: %w", err)
	}
	if s.rootKeyCheck != nil {
		if err := writeRootKeyCheck(s.cfg.DataDir, s.rootKeyCheck); err != nil {
			return err
		}
	}
	s.svc = kms.New(stateReader{db: s.db, node: node}, stateProposer{node}, kms.Options{
		Admins: s.cfg.Admins, ClusterID: node.ClusterID,
		CacheMaxEntries: s.cfg.Cache.cacheEntries(),
	})
	s.cached.Store(s.svc)
	return s.openHandler()
}

// lead runs on this node each time it becomes the leader: it creates the
// default enclave once per cluster (kms.Init is idempotent), retrying until
// it succeeds or the node stops leading.
func (s *Server) lead(ctx context.Context) {
	for retry := 100 * time.Millisecond; ; retry = min(retry*2, 5*time.Second) {
		err := s.svc.Init(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("Could not initialise the key store; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// adminsDigest identifies a set of cluster admins, whatever their order:
// every member of a cluster must name the same ones, since a follower
// authorises the writes it forwards.
func adminsDigest(admins []kms.Identity) string {
	ids := make([]string, len(admins))
	for i, a := range admins {
		ids[i] = string(a)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:])
}

// openHandler builds the HTTP handler of the client API.
func (s *Server) openHandler() error {
	registry, metrics, err := newRegistry()
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := tlsmetrics.Register(registry, s.certs); err != nil {
		return fmt.Errorf("registering TLS metrics: %w", err)
	}
	for _, c := range s.conns.collectors() {
		if err := registry.Register(c); err != nil {
			return fmt.Errorf("registering connection metrics: %w", err)
		}
	}
	// The cluster's health: the status route, and the periodic evaluation
	// that logs the findings and updates the cluster metrics.
	if err := registry.Register(kmsCacheCollector{s.svc.Stats}); err != nil {
		return fmt.Errorf("registering cache metrics: %w", err)
	}
	clusterMetrics := new(clusterCollector)
	if err := registry.Register(clusterMetrics); err != nil {
		return fmt.Errorf("registering cluster metrics: %w", err)
	}
	s.watch = newMonitor(s.clusterHealth(), clusterMetrics, s.log.With(slog.String("component", "health")))
	// A body that has not arrived within the request timeout is cut:
	// the request could not be answered but with a timeout any more, and
	// the answer's own time (writeSlack) is left for the 408.
	s.stalls = newStallGuard(min(readTimeout, s.cfg.Limits.RequestTimeout), s.cfg.Limits.RequestTimeout+writeSlack, stallTick,
		s.log.With(slog.String("component", "http")))
	if err := registry.Register(s.stalls.cuts); err != nil {
		return fmt.Errorf("registering stall metrics: %w", err)
	}
	audit, err := newAuditTrail(s.journal, s.log, s.cfg.Log)
	if err != nil {
		return err
	}
	s.audit = audit
	streamsDone := make(chan struct{})
	s.stopStreams = sync.OnceFunc(func() { close(streamsDone) })
	h := &handler{
		journal:    s.journal,
		audit:      s.audit,
		logPeers:   s.node.Load(),
		shutdown:   streamsDone,
		svc:        s.svc,
		log:        s.log,
		node:       nodeState{s},
		certs:      s.certs,
		cluster:    s.node.Load(),
		replica:    s.node.Load(),
		metrics:    metrics,
		registry:   registry,
		health:     s.clusterHealth(),
		peers:      s.node.Load(),
		timeout:    s.cfg.Limits.RequestTimeout,
		batchSlots: make(chan struct{}, batchSlots()),
		pprof:      s.cfg.Debug.PProf,
		stalls:     s.stalls,
		backups: &backups{
			db: s.db, node: s.node.Load(), dir: s.cfg.DataDir, nodeID: s.cfg.Cluster.NodeID,
			rootKey: s.cfg.RootKey.load,
		},
	}
	s.workers = newWorkers(h.routes(), 0)
	s.http = &http.Server{
		Handler: s.workers,
		// ReadHeaderTimeout also bounds the TLS handshake. The body's
		// and the answer's time (readTimeout, the request timeout plus
		// writeSlack) are s.stalls's to enforce, not ReadTimeout's and
		// WriteTimeout's (stall.go).
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(httpErrorLog{log: s.log, certs: s.certs}, "", 0),
		// Connections without an authenticated request idle for
		// limits.unauthenticated_idle_timeout only, the others IdleTimeout.
		ConnState:   s.conns.ConnState,
		ConnContext: s.conns.ConnContext,
	}
	s.http.RegisterOnShutdown(s.stopStreams)
	s.node.Load().Handle(logsMethod, h.serveLogsRead)
	s.node.Load().Handle(levelMethod, h.serveSetLevel)
	return nil
}

// Ready returns nil once the node serves (see /v1/health/ready), else an
// error that says what it waits for.
func (s *Server) Ready(ctx context.Context) error { return nodeState{s}.Ready(ctx) }

// WaitReady returns once the node is ready, or ctx's error (with the last
// reason it was not) when ctx ends first.
func (s *Server) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the node to be ready: %w (%w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Addr returns the bound address of the client API listener, for example
// 127.0.0.1:40123 when the configured port is 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves the client API until ctx is done, then shuts down gracefully:
// requests in flight get a deadline to finish, then raft and the state file
// are closed, as Close does. While Run runs, the TLS certificates are
// reloaded on their interval, when their files change and on SIGHUP.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("server: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.certs.Run(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("TLS certificate reloading stopped", slog.Any("error", err))
		}
	})
	wg.Go(func() { s.reloadOnSignal(ctx, s.hup) })
	wg.Go(func() { s.watch.run(ctx) })
	wg.Go(func() { s.stalls.run(ctx) })

	served := make(chan error, 1)
	go func() { served <- s.http.Serve(s.ln) }()
	s.log.Info("minkms node started",
		slog.String("node_id", s.cfg.Cluster.NodeID),
		slog.String("address", s.Addr()),
		slog.String("data_dir", s.cfg.DataDir),
		slog.String("version", Version))

	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("serving the client API: %w", err)
	}
	cancel()
	s.log.Info("minkms node stopping", slog.String("node_id", s.cfg.Cluster.NodeID))
	if n := s.node.Load(); n != nil {
		n.BeginStop()
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	if serr := s.http.Shutdown(shutdownCtx); serr != nil {
		s.log.Warn("Requests still running at shutdown were cut off", slog.Any("error", serr))
	}
	wg.Wait()
	err = errors.Join(err, s.Close())
	if err == nil {
		s.log.Info("minkms node stopped", slog.String("node_id", s.cfg.Cluster.NodeID))
	}
	return err
}

// reloadOnSignal reloads the certificates on every signal until ctx is done.
func (s *Server) reloadOnSignal(ctx context.Context, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			s.audit.Reopen() // for logrotate
			res := s.certs.Reload(ctx)
			level := slog.LevelInfo
			if res.Failed() {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "TLS certificates reloaded on SIGHUP",
				slog.Bool("rotated", res.Rotated), slog.Bool("failed", res.Failed()))
		}
	}
}

// Close stops the node at once: the listener and its connections, raft and
// the state file. It is safe to call more than once and after Run.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		signal.Stop(s.hup)
		var errs []error
		if s.stopStreams != nil {
			s.stopStreams()
		}
		if s.http != nil {
			errs = append(errs, s.http.Close())
			s.workers.Close()
		}
		if s.ln != nil {
			if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		if node := s.node.Load(); node != nil {
			if err := node.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing raft: %w", err))
			}
		}
		if svc := s.cached.Load(); svc != nil {
			svc.Close() // zeroes the key material of its cache
		}
		if s.unsubscribeReport != nil {
			s.unsubscribeReport()
		}
		if s.peer != nil {
			if err := s.peer.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the inter-node listener: %w", err))
			}
		}
		if s.db != nil {
			if err := s.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the state: %w", err))
			} else if errors.Join(errs...) == nil && s.node.Load() != nil {
				// (errs holds the nils of the closes that went well.)
				// A clean stop: the next start need not check the state.
				os.Remove(filepath.Join(s.cfg.DataDir, uncleanMarker))
			}
		}
		if err := s.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the audit file: %w", err))
		}
		s.journal.Flush()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// nodeState answers the node routes' questions about the node.
type nodeState struct{ s *Server }

func (n nodeState) ID() string         { return n.s.cfg.Cluster.NodeID }
func (n nodeState) IsLeader() bool     { return n.s.node.Load().IsLeader() }
func (n nodeState) Started() time.Time { return n.s.started }
func (n nodeState) Role() string       { return n.s.node.Load().Role() }

// LeaderID returns the id of the leader this node knows, "" if none.
func (n nodeState) LeaderID() string { id, _ := n.s.node.Load().Leader(); return id }

// ClusterID returns the id of the cluster, "" while it is not known.
func (n nodeState) ClusterID() string { return n.s.node.Load().ClusterID() }

// readyTimeout bounds the catch-up a readiness probe waits for.
const readyTimeout = 2 * time.Second

// Ready returns nil when the node serves: it is in a cluster, a leader is
// known and heard from, it has applied everything the leader had when
// asked, and the key store is initialised. Otherwise an Unavailable error
// says which of these is missing.
func (n nodeState) Ready(ctx context.Context) error {
	node := n.s.node.Load()
	notReady := func(format string, args ...any) error {
		return &kms.Error{Code: kms.Unavailable, Message: "not ready: " + fmt.Sprintf(format, args...)}
	}
	if f := node.Formation(); f != "" {
		return notReady("%s", f)
	}
	if err := node.Fresh(); err != nil {
		return notReady("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := node.Sync(ctx); err != nil {
		if applied, target := node.Progress(); applied+1 < target {
			return notReady("catching up with the leader: applied %d of about %d log entries", applied, target)
		}
		return notReady("catching up with the leader: %v", err)
	}
	if err := n.s.svc.Initialised(ctx); err != nil {
		return notReady("the key store is not initialised yet: %v", err)
	}
	if err := node.Reported(); err != nil {
		return notReady("%v", err)
	}
	return nil
}

// httpErrorLog receives the http.Server's own error log: it counts TLS
// handshake failures and logs the rest.
type httpErrorLog struct {
	log   *slog.Logger
	certs *tlsmgr.Manager
}

func (l httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.certs.HandshakeFailed("api")
		l.log.Debug("TLS handshake with a client failed", slog.String("error", msg))
	} else {
		l.log.Warn("HTTP server error", slog.String("error", msg))
	}
	return len(p), nil
}

func tlsPairs(pairs []CertPair) []tlsmgr.Pair {
	out := make([]tlsmgr.Pair, len(pairs))
	for i, p := range pairs {
		out[i] = tlsmgr.Pair{Cert: p.Cert, Key: p.Key}
	}
	return out
}

// advertisedHost is the host that must be in the certificate's SANs: that
// of the advertised address, none for an unspecified one.
func advertisedHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return host
}
