package cluster

import (
	"bytes"
	"strconv"
	"time"

	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/hashicorp/raft"
)

// nodeIDFile holds the id a data directory belongs to.
const nodeIDFile = "node-id"

// checkNodeID refuses a node id other than the one the data directory was
// created with. A directory with state but no id file comes from a build
// that ran one node only; migrate adopts it.
func (n *Node) checkNodeID() error {
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, nodeIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the node id: %w", err)
	}
	if id := string(bytes.TrimSpace(b)); id != n.cfg.NodeID {
		return fmt.Errorf("%w: the data directory %s belongs to node %q, but the config says node_id %q; a node's id cannot change (set node_id back to %q, or remove the node from the cluster and start with an empty data directory)",
			ErrRefused, n.cfg.DataDir, id, n.cfg.NodeID, id)
	}
	return nil
}

func writeNodeID(dataDir, id string) error {
	path := filepath.Join(dataDir, nodeIDFile)
	if b, err := os.ReadFile(path); err == nil && string(bytes.TrimSpace(b)) == id {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the node id: %w", err)
	}
	return nil
}

// raftView is what the raft directory holds, as read without writing.
type raftView struct {
	logExists   bool
	first, last uint64 // of the log; 0 for an empty one
	term        uint64 // the current term in the stable store
	snap        *raft.SnapshotMeta
	snapDir     string // the newest snapshot's directory
	// stateTerm is the term of the log entry at the state's applied
	// index, 0 if the log does not hold it.
	stateTerm uint64
}

func (v raftView) hasState() bool { return v.last > 0 || v.term > 0 || v.snap != nil }

// inspectRaft reads the raft log in dir, read-only, and the snapshot
// store's directory; stateIndex is the index the state file applied.
func inspectRaft(dir string, stateIndex uint64) (raftView, error) {
	path := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return viewOf(nil, dir, stateIndex)
	} else if err != nil {
		return raftView{}, fmt.Errorf("read the raft log: %w", err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second}})
	if err != nil {
		return raftView{}, fmt.Errorf("open the raft log %s: %w", path, err)
	}
	defer logs.Close()
	return viewOf(logs, dir, stateIndex)
}

// viewOf reads logs (nil: there is no log) and the snapshots in dir.
func viewOf(logs *raftboltdb.BoltStore, dir string, stateIndex uint64) (raftView, error) {
	var v raftView
	meta, snapDir, err := newestSnapshot(dir)
	if err != nil {
		return v, err
	}
	v.snap, v.snapDir = meta, snapDir
	if logs == nil {
		return v, nil
	}
	v.logExists = true
	if v.first, err = logs.FirstIndex(); err != nil {
		return v, fmt.Errorf("read the raft log: %w", err)
	}
	if v.last, err = logs.LastIndex(); err != nil {
		return v, fmt.Errorf("read the raft log: %w", err)
	}
	v.term, _ = logs.GetUint64([]byte("CurrentTerm")) // raft's key; missing on a fresh log
	if stateIndex > 0 && stateIndex >= v.first && stateIndex <= v.last {
		var l raft.Log
		switch err := logs.GetLog(stateIndex, &l); {
		case errors.Is(err, raft.ErrLogNotFound):
			// The hole a restored backup leaves below its snapshot (see
			// Restore): no entry to compare with.
		case err != nil:
			return v, fmt.Errorf("read raft log entry %d: %w", stateIndex, err)
		default:
			v.stateTerm = l.Term
		}
	}
	return v, nil
}

// checkState compares what the state file has applied with what the raft
// log and snapshots hold, before raft starts and before anything is
// written:
//
//   - a state ahead of the log (the log was lost or replaced) is refused:
//     raft would number new entries from the log's end and the state would
//     skip them as applied, dropping acknowledged writes;
//   - a state whose last applied entry has another term than the log's
//     entry at that index is refused: they are of different histories;
//   - a state behind the newest snapshot (the state file was lost or is an
//     old copy) is to be rebuilt from that snapshot, which it returns; raft
//     then replays the log after it. A snapshot never replaces a newer
//     state.
func (n *Node) checkState(v raftView) (*raft.SnapshotMeta, error) {
	index, term := n.cfg.Store.Applied()
	dir := filepath.Join(n.cfg.DataDir, "raft")
	end := v.last
	if v.snap != nil && v.snap.Index > end {
		end = v.snap.Index
	}
	remedy := "restore this node's data directory from a backup, or remove the node from the cluster (minkms cluster remove-node), empty its data directory and let it join again"
	if index > end {
		what := "ends at " + strconv.FormatUint(end, 10)
		if !v.logExists {
			what = "does not exist"
		}
		return nil, fmt.Errorf("%w: the state file %s has applied raft entries up to index %d, but the raft log in %s %s: the raft log was lost or replaced; %s",
			ErrState, n.cfg.Store.Path(), index, dir, what, remedy)
	}
	if index > 0 && term > 0 {
		var have uint64
		switch {
		case v.snap != nil && v.snap.Index == index:
			have = v.snap.Term
		default:
			have = v.stateTerm
		}
		if have != 0 && have != term {
			return nil, fmt.Errorf("%w: the state file %s last applied entry %d of term %d, but the raft log holds that entry with term %d: they come from different histories; %s",
				ErrState, n.cfg.Store.Path(), index, term, have, remedy)
		}
	}
	switch {
	case v.snap != nil && index < v.snap.Index:
		return v.snap, nil
	case v.snap == nil && v.first > 1 && index < v.first-1:
		return nil, fmt.Errorf("%w: the state file %s has applied entries up to %d, the raft log starts at %d and there is no snapshot to fill the gap; %s",
			ErrState, n.cfg.Store.Path(), index, v.first, remedy)
	}
	return nil, nil
}

// restoreSnapshot rebuilds the state from snap, at start.
func (n *Node) restoreSnapshot(snap *raft.SnapshotMeta) error {
	index, _ := n.cfg.Store.Applied()
	n.logger.Warn("The state file is behind the newest raft snapshot; rebuilding it from the snapshot and the log",
		slog.Uint64("state_index", index), slog.Uint64("snapshot_index", snap.Index), slog.String("snapshot", snap.ID))
	_, rc, err := n.snaps.Open(snap.ID)
	if err != nil {
		return fmt.Errorf("open raft snapshot %s: %w", snap.ID, err)
	}
	return n.fsm.Restore(rc)
}

// migrate adopts a data directory of the single-node layout: one member
// with the default id or the bind address as raft address. Its raft
// configuration is rewritten once (raft's RecoverCluster) to this node's
// id and peer address, so that the node can then be grown into a cluster.
func (n *Node) migrate(rc *raft.Config) error {
	if _, err := os.Stat(filepath.Join(n.cfg.DataDir, nodeIDFile)); err == nil {
		return nil // written by a build that knows clusters
	}
	probe := *rc
	probe.Logger = newHCLogAdapter(n.logger.With(slog.String("phase", "migration")))
	conf, err := raft.GetConfiguration(&probe, n.fsm, n.logStore, n.logStore, n.snaps, n.transport)
	if err != nil {
		return fmt.Errorf("read the raft configuration: %w", err)
	}
	if len(conf.Servers) != 1 {
		return nil
	}
	old := conf.Servers[0]
	want := raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.PeerAddr)}
	if old.ID == want.ID && old.Address == want.Address {
		return nil
	}
	n.logger.Warn("Migrating a single-node data directory to this node's id and peer address",
		slog.String("old_id", string(old.ID)), slog.String("old_address", string(old.Address)),
		slog.String("id", n.cfg.NodeID), slog.String("peer_address", n.cfg.PeerAddr))
	recovery := *rc
	recovery.Logger = probe.Logger
	last, err := n.lastEntry()
	if err != nil {
		return err
	}
	f := &recoveryFSM{fsm: n.fsm, last: last}
	err = raft.RecoverCluster(&recovery, f, n.logStore, n.logStore, n.snaps, n.transport,
		raft.Configuration{Servers: []raft.Server{want}})
	f.release()
	if err != nil {
		return fmt.Errorf("migrate the raft configuration from %s to %s: %w", old.ID, n.cfg.NodeID, err)
	}
	return nil
}

// hostOf returns the host of a host:port address, the address itself if it
// has no port.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
