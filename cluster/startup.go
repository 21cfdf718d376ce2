package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// nodeIDFile holds the id a data directory belongs to.
const nodeIDFile = "node-id"

// checkNodeID refuses a node id other than the one the data directory was
// created with. A directory with state but no id file comes from a build
// that ran one node only; migrate adopts it.
func (n *Node) checkNodeID(hasState bool) error {
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

// checkState compares what the state file has applied with what the raft
// log and snapshots hold, before raft starts:
//
//   - a state ahead of the log (the log was lost or replaced) is refused:
//     raft would number new entries from the log's end and the state would
//     skip them as applied, dropping acknowledged writes;
//   - a state whose last applied entry has another term than the log's
//     entry at that index is refused: they are of different histories;
//   - a state behind the newest snapshot (the state file was lost or is an
//     old copy) is rebuilt from that snapshot here; raft then replays the
//     log after it. A snapshot never replaces a newer state.
func (n *Node) checkState() error {
	index, term := n.cfg.Store.Applied()
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return fmt.Errorf("read the raft log: %w", err)
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		return fmt.Errorf("read the raft log: %w", err)
	}
	snaps, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	var snap *raft.SnapshotMeta
	if len(snaps) > 0 {
		snap = snaps[0]
	}
	end := last
	if snap != nil && snap.Index > end {
		end = snap.Index
	}
	remedy := "restore this node's data directory from a backup, or remove the node from the cluster (minkms cluster remove-node), empty its data directory and let it join again"
	if index > end {
		return fmt.Errorf("%w: the state file %s has applied raft entries up to index %d, but the raft log in %s ends at %d: the raft log was lost or replaced; %s",
			ErrState, n.cfg.Store.Path(), index, filepath.Join(n.cfg.DataDir, "raft"), end, remedy)
	}
	if index > 0 && term > 0 {
		var logTerm uint64
		switch {
		case snap != nil && snap.Index == index:
			logTerm = snap.Term
		case index >= first && index <= last && first > 0:
			var l raft.Log
			err := n.logStore.GetLog(index, &l)
			switch {
			case errors.Is(err, raft.ErrLogNotFound):
				// The hole a restored backup leaves below its snapshot
				// (see Restore): no entry to compare with.
			case err != nil:
				return fmt.Errorf("read raft log entry %d: %w", index, err)
			default:
				logTerm = l.Term
			}
		}
		if logTerm != 0 && logTerm != term {
			return fmt.Errorf("%w: the state file %s last applied entry %d of term %d, but the raft log holds that entry with term %d: they come from different histories; %s",
				ErrState, n.cfg.Store.Path(), index, term, logTerm, remedy)
		}
	}
	if snap != nil && index < snap.Index {
		n.logger.Warn("The state file is behind the newest raft snapshot; rebuilding it from the snapshot and the log",
			slog.Uint64("state_index", index), slog.Uint64("snapshot_index", snap.Index), slog.String("snapshot", snap.ID))
		_, rc, err := n.snaps.Open(snap.ID)
		if err != nil {
			return fmt.Errorf("open raft snapshot %s: %w", snap.ID, err)
		}
		if err := n.fsm.Restore(rc); err != nil {
			return err
		}
	} else if snap == nil && first > 1 && index < first-1 {
		return fmt.Errorf("%w: the state file %s has applied entries up to %d, the raft log starts at %d and there is no snapshot to fill the gap; %s",
			ErrState, n.cfg.Store.Path(), index, first, remedy)
	}
	return nil
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
	err = raft.RecoverCluster(&recovery, n.fsm, n.logStore, n.logStore, n.snaps, n.transport,
		raft.Configuration{Servers: []raft.Server{want}})
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
