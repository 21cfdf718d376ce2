package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

// Defaults for the zero values of Config.
const (
	DefaultProposeTimeout = 10 * time.Second
	DefaultMaxStale       = 30 * time.Second
)

// retainSnapshots is how many raft snapshots DataDir/raft/snapshots keeps.
const retainSnapshots = 2

// Timing holds raft's timing and log compaction settings. Zero values take
// the defaults of DefaultTiming.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
}

// The default timings. A follower that misses the leader's heartbeats for
// a random time between HeartbeatTimeout and twice that starts an election,
// which takes a round trip unless votes split (then another
// ElectionTimeout): on a LAN a new leader is elected within about 1.5s of
// losing one, and well within 3s even with a split vote. Heartbeats go out
// every HeartbeatTimeout/10. Across a WAN, raise the two timeouts together.
const (
	DefaultHeartbeatTimeout   = 600 * time.Millisecond
	DefaultElectionTimeout    = 600 * time.Millisecond
	DefaultLeaderLeaseTimeout = 300 * time.Millisecond
	DefaultSnapshotInterval   = 2 * time.Minute
	DefaultSnapshotThreshold  = 8192
	DefaultTrailingLogs       = 10240
)

// DefaultTiming holds the default timings.
var DefaultTiming = Timing{
	HeartbeatTimeout:   DefaultHeartbeatTimeout,
	ElectionTimeout:    DefaultElectionTimeout,
	LeaderLeaseTimeout: DefaultLeaderLeaseTimeout,
	SnapshotInterval:   DefaultSnapshotInterval,
	SnapshotThreshold:  DefaultSnapshotThreshold,
	TrailingLogs:       DefaultTrailingLogs,
}

func (t Timing) withDefaults() Timing {
	d := DefaultTiming
	if t.HeartbeatTimeout > 0 {
		d.HeartbeatTimeout = t.HeartbeatTimeout
	}
	if t.ElectionTimeout > 0 {
		d.ElectionTimeout = t.ElectionTimeout
	}
	if t.LeaderLeaseTimeout > 0 {
		d.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	}
	if t.SnapshotInterval > 0 {
		d.SnapshotInterval = t.SnapshotInterval
	}
	if t.SnapshotThreshold > 0 {
		d.SnapshotThreshold = t.SnapshotThreshold
	}
	if t.TrailingLogs > 0 {
		d.TrailingLogs = t.TrailingLogs
	}
	return d
}

// Config configures a Node.
type Config struct {
	NodeID   string // the raft server ID; required; never changes for a data directory
	PeerAddr string // the advertised inter-node address (host:port) peers dial; raft's address of this node
	APIAddr  string // the advertised client API address, shown to operators

	// DataDir holds raft's files in DataDir/raft (raft.db, snapshots/) and
	// the node's id in DataDir/node-id.
	DataDir string

	// Store is the state the FSM applies to. The node does not close it.
	Store *storage.DB

	// Logger receives raft's log output too. nil means slog.Default().
	Logger *slog.Logger

	// Transport carries raft's RPCs: a network transport over the peer
	// listener, or an in-memory one in tests. Required. The node closes it.
	Transport raft.Transport

	// RPC is the internal RPC between nodes, over which followers forward
	// writes and ask for read indexes and nodes join. nil makes a node that
	// can only ever be a cluster of one.
	RPC RPC

	Timing Timing

	// ProposeTimeout bounds a write whose context has no earlier deadline.
	ProposeTimeout time.Duration

	// MaxStale is how long a follower may go without contact with a leader
	// before Fresh reports it stale.
	MaxStale time.Duration

	// AdminsDigest identifies the cluster admins of the node's config; a
	// node whose digest differs from the cluster's is refused at join.
	AdminsDigest string

	// Formation: see Form. At most one of Bootstrap and BootstrapExpect.
	Bootstrap       bool
	BootstrapExpect int
	Join            []string // peer addresses

	// OnLeader, if set, is called in its own goroutine each time this node
	// becomes the leader, with a context that ends when it stops leading.
	OnLeader func(ctx context.Context)

	// Report, if set, returns this node's report as it is now (version,
	// reload interval, warn_before, certificates); the node fills in its id,
	// its addresses and the time. It is called about once a second and
	// must be cheap. Nil reports the addresses only.
	Report func() health.NodeReport

	// ReportTrigger, if set, receives a value whenever the report may have
	// changed (a certificate rotation: tlsmgr's Subscribe): the node then
	// writes it at once rather than at the next upkeep.
	ReportTrigger <-chan struct{}

	// Observations, if set, returns what this node saw of its peers in
	// inter-node handshakes (peernet's Network.Observations), which other
	// nodes ask for to evaluate the cluster's health.
	Observations func() []health.Observation

	// OnApply, if set, is called by the FSM after each batch of raft
	// entries is written to the state file, with the index of the last
	// one and the mutations of the changes that were applied (not those
	// whose preconditions failed), before any of their proposers is
	// answered and before the applied index moves. It runs on raft's apply
	// path and must be fast; it must not keep changed, whose values are
	// sealed. kms.Service.Invalidate is one.
	OnApply func(index uint64, changed []kv.Mutation)

	// OnRestore, if set, is called after a snapshot replaced the state,
	// with the index it is now at, before the FSM applies anything else
	// (kms.Service.InvalidateAll).
	OnRestore func(index uint64)
}

// Node is this node's member of the raft cluster.
type Node struct {
	cfg       Config
	logger    *slog.Logger
	raft      *raft.Raft
	fsm       *fsm
	logStore  *raftboltdb.BoltStore
	snaps     raft.SnapshotStore
	transport raft.Transport

	guard     *restoreGuard // wraps the file snapshot store: see Restore
	restoreMu sync.Mutex    // one restore at a time

	done   chan struct{} // closed by Close
	stopFn chan struct{} // closed by Close before raft stops: releases a halted FSM
	wg     sync.WaitGroup

	leaderMu  sync.Mutex
	leaderSig chan struct{} // closed and replaced when the leader changes

	readIndex readIndexGroup
	barrier   atomic.Uint64 // the term in which this leader's barrier completed

	formation atomic.Pointer[string] // what formation is doing, "" once done

	clusterID atomic.Pointer[string]
	// freshUntil is when a follower's last contact with a leader, as
	// Fresh last read it, ages past MaxStale: until then Fresh need not
	// read it again (a later contact only moves it further).
	freshUntil atomic.Pointer[time.Time]
	// stopping is set once the node begins to stop (BeginStop, Close):
	// raft's complaints about peers that stop answering are then
	// logged at debug level (demoteWhileStopping).
	stopping atomic.Bool

	askMu  sync.Mutex
	askers map[string]Handler // the methods of Handle, for Ask on this node itself

	closeOnce sync.Once
	closeErr  error
}

// Open starts raft for this node on the data directory. It never forms a
// cluster by itself: a node with state resumes it; a node without waits for
// Form (bootstrap, bootstrap_expect or join, as configured), which Open
// starts in the background.
//
// Before raft starts, Open checks that the state file and the raft log
// agree (an error wrapping ErrState if not) and that the node id is the one
// the data directory was created with.
func Open(cfg Config) (*Node, error) {
	if cfg.NodeID == "" || cfg.DataDir == "" || cfg.Store == nil || cfg.Transport == nil {
		return nil, errors.New("open cluster node: NodeID, DataDir, Store and Transport are required")
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = string(cfg.Transport.LocalAddr())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = DefaultProposeTimeout
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	cfg.Timing = cfg.Timing.withDefaults()
	n := &Node{
		cfg: cfg, logger: cfg.Logger, transport: cfg.Transport,
		done: make(chan struct{}), stopFn: make(chan struct{}), leaderSig: make(chan struct{}),
	}
	n.readIndex.node = n
	n.askers = map[string]Handler{}
	empty := ""
	n.formation.Store(&empty)
	if err := n.start(); err != nil {
		n.closeStores()
		return nil, fmt.Errorf("open cluster node %s: %w", cfg.NodeID, err)
	}
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	t := n.cfg.Timing
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	rc.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	rc.SnapshotInterval = t.SnapshotInterval
	rc.SnapshotThreshold = t.SnapshotThreshold
	rc.TrailingLogs = t.TrailingLogs
	rc.CommitTimeout = 10 * time.Millisecond
	// This node decides itself whether a snapshot replaces the state at
	// start (checkState): never one older than the state file.
	rc.NoSnapshotRestoreOnStart = true
	raftLog := newHCLogAdapter(n.logger)
	raftLog.demote = demoteWhileStopping(&n.stopping)
	rc.Logger = raftLog
	return rc
}

func (n *Node) start() error {
	cfg := n.cfg
	dir := filepath.Join(cfg.DataDir, "raft")
	applied, _ := cfg.Store.Applied()
	n.fsm = &fsm{store: cfg.Store, logger: n.logger, applied: newIndexWatch(applied), stop: n.stopFn, onApply: cfg.OnApply, onRestore: cfg.OnRestore}

	// Every check reads only: a refused start leaves the directory as it
	// was.
	view, err := inspectRaft(dir, applied)
	if err != nil {
		return err
	}
	hasState := view.hasState() || applied > 0
	if err := n.checkNodeID(); err != nil {
		return err
	}
	var restore *raft.SnapshotMeta
	if hasState {
		if restore, err = n.checkState(view); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	n.logStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	rc := n.raftConfig()
	files, err := raft.NewFileSnapshotStoreWithLogger(dir, retainSnapshots, rc.Logger)
	if err != nil {
		return fmt.Errorf("open raft snapshots: %w", err)
	}
	n.guard = &restoreGuard{SnapshotStore: files}
	n.snaps = n.guard
	if restore != nil {
		if err := n.restoreSnapshot(restore); err != nil {
			return err
		}
	}
	if hasState {
		if err := n.migrate(rc); err != nil {
			return err
		}
	}
	logs, err := raft.NewLogCache(512, n.logStore)
	if err != nil {
		return err
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, n.logStore, n.snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if err := writeNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		n.raft.Shutdown().Error()
		return err
	}
	n.registerRPC()
	n.registerProbes()
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(observer)
	n.wg.Go(func() {
		defer n.raft.DeregisterObserver(observer)
		n.watchLeader(obs)
	})
	n.wg.Go(n.leaderLoop)
	if !hasState {
		ctx, cancel := context.WithCancel(context.Background())
		n.wg.Go(func() {
			defer cancel()
			<-n.done
		})
		n.wg.Go(func() { n.form(ctx) })
	}
	return nil
}

// watchLeader wakes the waiters of leaderSig on every leader change.
func (n *Node) watchLeader(obs <-chan raft.Observation) {
	for {
		select {
		case <-n.done:
			return
		case o := <-obs:
			lo := o.Data.(raft.LeaderObservation)
			if lo.LeaderID != "" {
				n.logger.Info("Raft leader elected", slog.String("leader", string(lo.LeaderID)),
					slog.String("address", string(lo.LeaderAddr)), slog.String("node", n.cfg.NodeID))
			}
			n.leaderMu.Lock()
			close(n.leaderSig)
			n.leaderSig = make(chan struct{})
			n.leaderMu.Unlock()
		}
	}
}

// leaderChanged returns a channel that is closed at the next leader change.
func (n *Node) leaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderSig
}

// WaitLeader returns once the cluster has a leader (this node or another),
// or an error wrapping ErrNoLeader when ctx ends first.
func (n *Node) WaitLeader(ctx context.Context) error {
	for {
		changed := n.leaderChanged()
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		if err := n.waitChange(ctx, changed); err != nil {
			return fmt.Errorf("wait for a raft leader: %w", err)
		}
	}
}

// waitChange waits until changed is closed, with a slow tick in case an
// observation was dropped.
func (n *Node) waitChange(ctx context.Context, changed <-chan struct{}) error {
	tick := time.NewTimer(50 * time.Millisecond)
	defer tick.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	case <-n.done:
		return fmt.Errorf("%w (%w)", ErrNoLeader, ErrClosed)
	case <-changed:
	case <-tick.C:
	}
	return nil
}

// Leader returns the ID and address of the current leader, both empty if
// there is none known to this node.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Role returns this node's raft role: "leader", "follower", "candidate"
// or "shutdown".
func (n *Node) Role() string { return strings.ToLower(n.raft.State().String()) }

// Snapshot makes raft take a snapshot now and compact its log.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raft snapshot: %w", err)
	}
	return nil
}

// Fresh returns nil if this node may serve reads from its replica: it is
// the leader, or a follower that heard from a leader within MaxStale, and
// its FSM applies the log. Otherwise it returns an error wrapping ErrStale
// or ErrNoLeader that says why.
func (n *Node) Fresh() error {
	if err := n.fsm.Halted(); err != nil {
		return fmt.Errorf("%w: this node stopped applying the raft log: %w", ErrNoLeader, err)
	}
	if n.IsLeader() {
		return nil
	}
	now := time.Now()
	if until := n.freshUntil.Load(); until != nil && now.Before(*until) {
		return nil // every request asks; raft's last contact takes locks
	}
	last := n.raft.LastContact()
	if id, _ := n.Leader(); id == "" && last.IsZero() {
		return fmt.Errorf("%w: this node has not found a leader yet", ErrNoLeader)
	}
	if age := now.Sub(last); age > n.cfg.MaxStale {
		return fmt.Errorf("%w: this node has not heard from a leader for %s (cluster.max_stale is %s)",
			ErrStale, age.Round(time.Second), n.cfg.MaxStale)
	}
	until := last.Add(n.cfg.MaxStale)
	n.freshUntil.Store(&until)
	return nil
}

// Close hands leadership over if this node leads, then stops raft and
// closes the raft log and the transport. It does not close Config.Store.
// It is safe to call more than once.
func (n *Node) Close() error {
	n.BeginStop()
	n.closeOnce.Do(func() {
		if n.IsLeader() && n.hasOtherVoters() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.Warn("Could not hand leadership over before stopping; the others elect a new leader after the election timeout",
					slog.Any("error", err))
			} else {
				n.logger.Info("Handed leadership over before stopping")
			}
		}
		n.snapshotBeforeStop()
		close(n.done)
		close(n.stopFn)
		err := n.raft.Shutdown().Error()
		n.wg.Wait()
		n.closeErr = errors.Join(err, n.closeStores())
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("close cluster node %s: %w", n.cfg.NodeID, n.closeErr)
		}
	})
	return n.closeErr
}

// BeginStop tells the node that it is about to stop, before Close: its
// peers going away from then on is expected, as when every node of a
// cluster stops at once, and is not logged as a failure.
func (n *Node) BeginStop() { n.stopping.Store(true) }

// stopSnapshotMin is how many entries since the last snapshot make a
// graceful stop take one, so that the next start replays little.
const stopSnapshotMin = 1024

// snapshotBeforeStop takes a snapshot if many entries were applied since
// the last one: a restart then restores it and replays only the rest,
// instead of the whole log since the last threshold snapshot.
func (n *Node) snapshotBeforeStop() {
	if n.fsm.Halted() != nil {
		return
	}
	applied, _ := n.fsm.applied.get()
	var last uint64
	if snaps, err := n.snaps.List(); err == nil && len(snaps) > 0 {
		last = snaps[0].Index
	}
	if applied < last+stopSnapshotMin {
		return
	}
	start := time.Now()
	if err := n.raft.Snapshot().Error(); err != nil {
		n.logger.Warn("Could not take a snapshot before stopping; the next start replays the log since the last one",
			slog.Any("error", err))
		return
	}
	n.logger.Info("Took a snapshot before stopping", slog.Uint64("index", applied),
		slog.Duration("took", time.Since(start)))
}

func (n *Node) hasOtherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.cfg.NodeID) {
			return true
		}
	}
	return false
}

func (n *Node) closeStores() error {
	var errs []error
	if c, ok := n.transport.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	return errors.Join(errs...)
}
