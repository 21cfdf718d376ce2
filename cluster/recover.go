package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/minkms/minkms/storage"
)

// ErrRunning is returned (wrapped) by Recover, and by whoever opens a data
// directory offline, when another process holds the directory's files:
// the node is running.
var ErrRunning = errors.New("the node is running; stop it first")

// ErrRecover is returned (wrapped) by Recover and ParseMember when the
// recovery is refused before anything was changed: a member list that is
// not well formed or does not name this node as configured, or a data
// directory without raft state or of another node. The message says which.
var ErrRecover = errors.New("recovery refused")

// RecoverLockTimeout is how long Recover waits for the lock of the raft
// log before it decides that the node is running.
const RecoverLockTimeout = time.Second

// RecoverConfig configures Recover: the node as its config names it, and
// the new member list.
type RecoverConfig struct {
	NodeID   string // this node's id, as configured
	PeerAddr string // this node's configured advertise_peer
	DataDir  string // the node's data directory, with raft/ and node-id

	// Store is the node's state file, opened offline by the caller; the
	// recovered configuration is written into a raft snapshot of it.
	// Recover does not close it.
	Store *storage.DB

	// Members is the new raft configuration: the surviving nodes, the same
	// list on every one of them.
	Members []Member

	Timing Timing
	Logger *slog.Logger // nil means slog.Default()
}

// Recovery is what Recover changed: the raft configuration the node had
// and the one it has now. Old equals New when the node had the new
// configuration already, and then nothing was written.
type Recovery struct {
	Old, New []Member
}

// Changed reports whether Recover rewrote the configuration: whether the
// old and the new members differ, in any order.
func (r Recovery) Changed() bool {
	byID := func(a, b Member) int { return strings.Compare(a.ID, b.ID) }
	old, cur := slices.SortedFunc(slices.Values(r.Old), byID), slices.SortedFunc(slices.Values(r.New), byID)
	return !slices.Equal(old, cur)
}

// memberIDPattern is what cluster.node_id may be.
var memberIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ParseMember parses a member of the form ID=HOST:PORT: a node id and the
// peer address (cluster.advertise_peer) of a voter. A malformed one is
// refused with an error wrapping ErrRecover.
func ParseMember(s string) (Member, error) {
	id, addr, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Member{}, fmt.Errorf("%w: member %q: want ID=HOST:PORT, the node id and its advertise_peer, for example n1=kms-1.example.net:7374", ErrRecover, s)
	}
	m := Member{ID: id, PeerAddr: addr, Voter: true}
	if err := m.check(); err != nil {
		return Member{}, fmt.Errorf("%w: member %q: %w", ErrRecover, s, err)
	}
	return m, nil
}

func (m Member) check() error {
	if !memberIDPattern.MatchString(m.ID) {
		return fmt.Errorf("invalid node id %q: use 1 to 64 of A-Z a-z 0-9 _ . -", m.ID)
	}
	host, port, err := net.SplitHostPort(m.PeerAddr)
	if err != nil || host == "" {
		return fmt.Errorf("invalid peer address %q: want host:port", m.PeerAddr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("peer address %q names no host that can be dialed: use the node's advertise_peer", m.PeerAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port in %q: want a number from 1 to 65535", m.PeerAddr)
	}
	return nil
}

// checkMembers refuses a member list that raft would refuse or that would
// leave this node out: every id and address once, well formed, at least
// one voter, and this node listed at its configured peer address.
func (cfg RecoverConfig) checkMembers() error {
	if len(cfg.Members) == 0 {
		return fmt.Errorf("%w: no members: list every surviving node, this one included", ErrRecover)
	}
	ids, addrs := map[string]bool{}, map[string]string{}
	voters := 0
	for _, m := range cfg.Members {
		if err := m.check(); err != nil {
			return fmt.Errorf("%w: member %s: %w", ErrRecover, m.ID, err)
		}
		if ids[m.ID] {
			return fmt.Errorf("%w: node id %s is listed twice", ErrRecover, m.ID)
		}
		if other, ok := addrs[m.PeerAddr]; ok {
			return fmt.Errorf("%w: members %s and %s have the same peer address %s", ErrRecover, other, m.ID, m.PeerAddr)
		}
		ids[m.ID], addrs[m.PeerAddr] = true, m.ID
		if m.Voter {
			voters++
		}
	}
	if voters == 0 {
		return fmt.Errorf("%w: no voter among the members", ErrRecover)
	}
	i := slices.IndexFunc(cfg.Members, func(m Member) bool { return m.ID == cfg.NodeID })
	if i < 0 {
		return fmt.Errorf("%w: this node, %s, is not in the member list; run recover on every surviving node with the same list, which names all of them", ErrRecover, cfg.NodeID)
	}
	if got := cfg.Members[i].PeerAddr; got != cfg.PeerAddr {
		return fmt.Errorf("%w: member %s is listed at %s, but its config says advertise_peer %s; list every node at its advertise_peer", ErrRecover, cfg.NodeID, got, cfg.PeerAddr)
	}
	if !cfg.Members[i].Voter {
		return fmt.Errorf("%w: this node, %s, must be a voter", ErrRecover, cfg.NodeID)
	}
	return nil
}

// Recover rewrites the raft configuration in the data directory of a
// stopped node to cfg.Members, for a cluster that lost its quorum for good
// (raft's RecoverCluster, like Consul's peers.json). Every survivor is
// recovered with the same member list while all of them are stopped; when
// they start again, they elect a leader among themselves.
//
// It is the last resort: writes that only the lost nodes had are lost, and
// recovering nodes with different lists, or while a node of the cluster
// runs, can make two clusters that each believe they are the one.
//
// Recover refuses, with an error wrapping ErrRecover and before it changes
// anything, a member list that is malformed or does not list this node at
// its configured peer address, and a data directory without raft state or
// that belongs to another node; with an error wrapping ErrRunning when the
// raft log is locked by a running node; and with one wrapping ErrState
// when the state file and the raft log disagree, as Open would.
func Recover(cfg RecoverConfig) (Recovery, error) {
	if cfg.NodeID == "" || cfg.PeerAddr == "" || cfg.DataDir == "" || cfg.Store == nil {
		return Recovery{}, errors.New("recover: NodeID, PeerAddr, DataDir and Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.checkMembers(); err != nil {
		return Recovery{}, err
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); errors.Is(err, os.ErrNotExist) {
		return Recovery{}, fmt.Errorf("%w: the data directory %s holds no raft state (no %s); there is nothing to recover: check data_dir in the config", ErrRecover, cfg.DataDir, filepath.Join(dir, "raft.db"))
	} else if err != nil {
		return Recovery{}, fmt.Errorf("recover: %w", err)
	}
	if err := checkRecoverNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return Recovery{}, err
	}
	transport := newRecoverTransport(cfg.PeerAddr)
	defer transport.Close()
	n := &Node{
		cfg: Config{
			NodeID: cfg.NodeID, PeerAddr: cfg.PeerAddr, DataDir: cfg.DataDir, Store: cfg.Store,
			Logger: cfg.Logger, Transport: transport, Timing: cfg.Timing.withDefaults(),
		},
		logger: cfg.Logger, transport: transport,
	}
	var err error
	n.logStore, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: RecoverLockTimeout},
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return Recovery{}, fmt.Errorf("%w: %s is locked by another process", ErrRunning, filepath.Join(dir, "raft.db"))
	}
	if err != nil {
		return Recovery{}, fmt.Errorf("recover: open raft log: %w", err)
	}
	defer n.logStore.Close()
	return n.recover(cfg.Members)
}

// checkRecoverNodeID refuses a data directory that does not say it belongs
// to id. One without the file never ran a build that knows clusters, and
// is no member of a multi-node cluster.
func checkRecoverNodeID(dataDir, id string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, nodeIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: the data directory %s has no node id file (%s); it was never a member of a cluster of several nodes: start the node once instead, it migrates its state by itself", ErrRecover, dataDir, nodeIDFile)
	}
	if err != nil {
		return fmt.Errorf("recover: read the node id: %w", err)
	}
	if got := string(bytes.TrimSpace(b)); got != id {
		return fmt.Errorf("%w: the data directory %s belongs to node %q, but the config says node_id %q", ErrRecover, dataDir, got, id)
	}
	return nil
}

// recover runs on a Node that has only its stores: no raft, no RPC.
func (n *Node) recover(members []Member) (Recovery, error) {
	rc := n.raftConfig()
	rc.Logger = newHCLogAdapter(n.logger.With(slog.String("phase", "recovery")))
	var err error
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(filepath.Join(n.cfg.DataDir, "raft"), retainSnapshots, rc.Logger)
	if err != nil {
		return Recovery{}, fmt.Errorf("recover: open raft snapshots: %w", err)
	}
	if ok, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps); err != nil {
		return Recovery{}, fmt.Errorf("recover: read raft state: %w", err)
	} else if !ok {
		return Recovery{}, fmt.Errorf("%w: the data directory %s holds no raft state; there is nothing to recover", ErrRecover, n.cfg.DataDir)
	}
	stop := make(chan struct{})
	close(stop) // a failing entry makes the FSM return at once, not wait
	applied, _ := n.cfg.Store.Applied()
	n.fsm = &fsm{store: n.cfg.Store, logger: n.logger, applied: newIndexWatch(applied), stop: stop}
	view, err := viewOf(n.logStore, filepath.Join(n.cfg.DataDir, "raft"), applied)
	if err != nil {
		return Recovery{}, fmt.Errorf("recover: %w", err)
	}
	if _, err := n.checkState(view); err != nil {
		return Recovery{}, fmt.Errorf("recover: %w", err)
	}

	probe := *rc
	old, err := raft.GetConfiguration(&probe, n.fsm, n.logStore, n.logStore, n.snaps, n.transport)
	if err != nil {
		return Recovery{}, fmt.Errorf("recover: read the raft configuration: %w", err)
	}
	want := raft.Configuration{}
	for _, m := range members {
		s := raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.PeerAddr)}
		if m.Voter {
			s.Suffrage = raft.Voter
		}
		want.Servers = append(want.Servers, s)
	}
	res := Recovery{Old: membersOf(old), New: membersOf(want)}
	if !res.Changed() {
		n.logger.Info("The raft configuration is the recovered one already; nothing to change",
			slog.String("node", n.cfg.NodeID))
		return res, nil
	}

	last, err := n.lastEntry()
	if err != nil {
		return Recovery{}, err
	}
	n.logger.Warn("Rewriting the raft configuration of this node: the last resort for a cluster that lost its quorum for good; writes that only the lost nodes had are lost",
		slog.String("node", n.cfg.NodeID), slog.String("old", formatMembers(res.Old)), slog.String("new", formatMembers(res.New)))
	f := &recoveryFSM{fsm: n.fsm, last: last}
	err = raft.RecoverCluster(rc, f, n.logStore, n.logStore, n.snaps, n.transport, want)
	f.release()
	if err != nil {
		return Recovery{}, fmt.Errorf("recover the raft configuration: %w", err)
	}
	return res, nil
}

// lastEntry returns the index and term of the newest entry of the log or
// the snapshots: the point the recovered snapshot is taken at.
func (n *Node) lastEntry() (storage.Op, error) {
	var last storage.Op
	snaps, err := n.snaps.List()
	if err != nil {
		return last, fmt.Errorf("recover: list raft snapshots: %w", err)
	}
	if len(snaps) > 0 {
		last = storage.Op{Index: snaps[0].Index, Term: snaps[0].Term}
	}
	index, err := n.logStore.LastIndex()
	if err != nil {
		return last, fmt.Errorf("recover: read the raft log: %w", err)
	}
	if index > last.Index {
		var l raft.Log
		if err := n.logStore.GetLog(index, &l); err != nil {
			return last, fmt.Errorf("recover: read raft log entry %d: %w", index, err)
		}
		last = storage.Op{Index: l.Index, Term: l.Term}
	}
	return last, nil
}

// recoveryFSM is the node's FSM as RecoverCluster drives it. RecoverCluster
// ignores what Apply returns, so an entry the FSM could not apply would be
// missing from the snapshot it then takes, and the log that holds the entry
// is compacted after: recoveryFSM remembers the failure and refuses the
// snapshot instead, which leaves the log as it was.
//
// RecoverCluster never releases the snapshot it takes, which holds a read
// transaction of the state file (and would make closing it wait forever):
// release does.
//
// RecoverCluster applies commands only, while the node's FSM also counts
// configuration entries; before the snapshot, the state's applied index is
// moved to the end of the log, which the snapshot is taken at, so that the
// node does not find its state behind its newest snapshot at start.
type recoveryFSM struct {
	*fsm
	last   storage.Op // the newest entry of the log and the snapshots
	failed error
	snap   raft.FSMSnapshot // the one RecoverCluster took, if it did
}

func (f *recoveryFSM) Apply(l *raft.Log) any {
	resp := f.fsm.Apply(l)
	if err := f.fsm.Halted(); err != nil && f.failed == nil {
		f.failed = err
	}
	return resp
}

func (f *recoveryFSM) Snapshot() (raft.FSMSnapshot, error) {
	if f.failed != nil {
		return nil, fmt.Errorf("the state file could not apply the raft log, nothing was changed: %w", f.failed)
	}
	if _, err := f.store.ApplyBatch([]storage.Op{f.last}); err != nil {
		return nil, err
	}
	snap, err := f.fsm.Snapshot()
	f.snap = snap
	return snap, err
}

func (f *recoveryFSM) release() {
	if f.snap != nil {
		f.snap.Release()
	}
}

// newRecoverTransport returns a transport that carries nothing: raft's
// recovery needs one only for the encoding of this node's address.
func newRecoverTransport(addr string) *raft.InmemTransport {
	_, t := raft.NewInmemTransport(raft.ServerAddress(addr))
	return t
}

func membersOf(c raft.Configuration) []Member {
	out := make([]Member, 0, len(c.Servers))
	for _, s := range c.Servers {
		out = append(out, Member{ID: string(s.ID), PeerAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out
}

func formatMembers(ms []Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.ID + "=" + m.PeerAddr
		if !m.Voter {
			parts[i] += " (nonvoter)"
		}
	}
	return strings.Join(parts, ", ")
}
