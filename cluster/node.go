package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/minkms/minkms/storage"
)

// Defaults for the zero values of Config.
const (
	DefaultSnapshotThreshold = 8192
	DefaultProposeTimeout    = 10 * time.Second
)

// retainSnapshots is how many raft snapshots DataDir/raft/snapshots keeps.
const retainSnapshots = 2

// ForwardFunc sends an encoded command from a follower to the leader, which
// applies it with ApplyCommand, and returns the leader's answer: nil, a
// *storage.ConditionError or another error.
type ForwardFunc func(ctx context.Context, leaderID, leaderAddr string, cmd []byte) error

// Config configures a Node.
type Config struct {
	NodeID  string // the raft server ID; required
	Address string // the node's raft address (its advertised inter-node address); "" means NodeID with the in-memory transport

	// DataDir holds raft's files in DataDir/raft: raft.db (log and stable
	// store) and snapshots/.
	DataDir string

	// Store is the state the FSM applies to. The node does not close it.
	Store *storage.DB

	// Logger receives raft's log output too. nil means slog.Default().
	Logger *slog.Logger

	// Transport carries raft's RPCs. nil means an in-memory transport, which
	// is enough for a single node. A node closes only a transport it made.
	Transport raft.Transport

	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one. 0 means DefaultSnapshotThreshold.
	SnapshotThreshold uint64

	// ProposeTimeout bounds how long Propose waits for a leader and for its
	// change to be applied, if the context has no earlier deadline. 0 means
	// DefaultProposeTimeout.
	ProposeTimeout time.Duration

	// Forward, if set, lets a follower hand a change to the leader. Without
	// it Propose on a follower returns ErrNoLeader.
	Forward ForwardFunc
}

// Node is this node's member of the raft cluster.
type Node struct {
	cfg       Config
	logger    *slog.Logger
	raft      *raft.Raft
	logStore  *raftboltdb.BoltStore
	transport raft.Transport
	ownsTrans bool

	observer *raft.Observer
	done     chan struct{}
	wg       sync.WaitGroup

	mu        sync.Mutex
	leaderSig chan struct{} // closed and replaced when the leader changes

	closeOnce sync.Once
	closeErr  error
}

// Open starts raft for this node. On the first start (no raft state in
// DataDir) it bootstraps a cluster whose only member is this node; later
// starts restore the latest snapshot and replay the log, and the store skips
// what it applied before.
func Open(cfg Config) (*Node, error) {
	if cfg.NodeID == "" || cfg.DataDir == "" || cfg.Store == nil {
		return nil, errors.New("open cluster node: NodeID, DataDir and Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = DefaultProposeTimeout
	}
	if cfg.Address == "" {
		cfg.Address = cfg.NodeID
	}
	n := &Node{cfg: cfg, logger: cfg.Logger, done: make(chan struct{}), leaderSig: make(chan struct{})}
	if err := n.start(); err != nil {
		n.closeStores()
		return nil, fmt.Errorf("open cluster node %s: %w", cfg.NodeID, err)
	}
	return n, nil
}

func (n *Node) start() error {
	cfg := n.cfg
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	hlog := newHCLogAdapter(n.logger)

	var err error
	n.logStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	logs, err := raft.NewLogCache(512, n.logStore)
	if err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retainSnapshots, hlog)
	if err != nil {
		return fmt.Errorf("open raft snapshots: %w", err)
	}
	n.transport = cfg.Transport
	if n.transport == nil {
		_, n.transport = raft.NewInmemTransport(raft.ServerAddress(cfg.Address))
		n.ownsTrans = true
	}
	hasState, err := raft.HasExistingState(logs, n.logStore, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.Logger = hlog

	fsm := &fsm{store: cfg.Store, logger: n.logger}
	n.raft, err = raft.NewRaft(rc, fsm, logs, n.logStore, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}

	obs := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(1)
	go n.watchLeader(obs)

	if !hasState {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter,
			ID:       rc.LocalID,
			Address:  n.transport.LocalAddr(),
		}}}
		if err := n.raft.BootstrapCluster(boot).Error(); err != nil {
			n.raft.Shutdown().Error()
			n.stopWatching()
			return fmt.Errorf("bootstrap raft: %w", err)
		}
		n.logger.Info("Bootstrapped a new cluster with this node as its only member",
			slog.String("node", cfg.NodeID), slog.String("address", string(n.transport.LocalAddr())))
	}
	return nil
}

// watchLeader wakes the waiters of leaderSig on every leader change.
func (n *Node) watchLeader(obs <-chan raft.Observation) {
	defer n.wg.Done()
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
			n.mu.Lock()
			close(n.leaderSig)
			n.leaderSig = make(chan struct{})
			n.mu.Unlock()
		}
	}
}

// leaderChanged returns a channel that is closed at the next leader change.
func (n *Node) leaderChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaderSig
}

// WaitLeader returns once the cluster has a leader (this node or another),
// or an error wrapping ErrNoLeader when ctx ends first.
func (n *Node) WaitLeader(ctx context.Context) error {
	// Observations may be dropped under load, so a slow tick re-checks too.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := n.leaderChanged()
		if id, _ := n.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for a raft leader: %w: %w", ErrNoLeader, ctx.Err())
		case <-n.done:
			return fmt.Errorf("wait for a raft leader: %w (%w)", ErrNoLeader, ErrClosed)
		case <-changed:
		case <-tick.C:
		}
	}
}

// Leader returns the ID and address of the current leader, both empty if
// there is none known to this node.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Snapshot makes raft take a snapshot now and compact its log. It is for
// operators and tests; raft snapshots on its own every SnapshotThreshold
// entries.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raft snapshot: %w", err)
	}
	return nil
}

// Close stops raft and closes the raft log and, if the node made it, the
// transport. It does not close Config.Store. It is safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		err := n.raft.Shutdown().Error()
		n.stopWatching()
		n.closeErr = errors.Join(err, n.closeStores())
		if n.closeErr != nil {
			n.closeErr = fmt.Errorf("close cluster node %s: %w", n.cfg.NodeID, n.closeErr)
		}
	})
	return n.closeErr
}

func (n *Node) stopWatching() {
	n.raft.DeregisterObserver(n.observer)
	close(n.done)
	n.wg.Wait()
}

func (n *Node) closeStores() error {
	var errs []error
	if c, ok := n.transport.(io.Closer); ok && n.ownsTrans {
		errs = append(errs, c.Close())
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	return errors.Join(errs...)
}

// Sync returns once every change committed before the call is applied to the
// local state. Only the leader can sync; elsewhere it returns an error
// wrapping ErrNoLeader. Because the barrier it commits needs a quorum, a
// read after Sync is also leader-verified: use it for consistent reads, and
// after a restart before serving reads, since the log is replayed only once
// the node has a leader.
func (n *Node) Sync(ctx context.Context) error {
	timeout := n.cfg.ProposeTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	future := n.raft.Barrier(timeout)
	errc := make(chan error, 1)
	go func() { errc <- future.Error() }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("sync: %w", ctx.Err())
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("sync: %w", raftError(err))
		}
	}
	return nil
}
