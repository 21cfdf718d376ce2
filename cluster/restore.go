package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage/kv"
)

// Restoring a backup replaces the state of the whole cluster through
// raft's own rule for it (raft.Restore): the leader writes the backup as a
// snapshot at an index past the end of its log, leaving a hole, restores
// its FSM from it, and every follower, finding the hole, installs the
// snapshot as it would any other. The writes that follow are appended
// after it.
//
// The state inside the backup records the applied index and term of the
// cluster it was taken from. Left so, a state whose index is past the new
// log's would skip the entries that follow the restore as applied, and
// one whose term differs would be refused at the next start. So the file
// is rewritten first to the index and term of the snapshot raft is about
// to write: raft numbers it max(meta.Index, last index)+1 in the leader's
// current term, so meta.Index is set restoreGap past the last index to
// leave room for the writes appended meanwhile, and restoreGuard refuses
// (before anything is written) a snapshot raft would number otherwise,
// which is then tried again with a new prediction.

// restoreGap is how many entries may be appended between the prediction
// of the restore snapshot's index and raft's taking it.
const restoreGap = 64

// restoreAttempts bounds how often a restore is tried again after raft
// numbered its snapshot other than predicted.
const restoreAttempts = 3

// errRestoreMoved is the refusal of restoreGuard.
var errRestoreMoved = errors.New("the restore snapshot's index or term moved")

// restoreGuard is the snapshot store of raft: it passes everything to the
// file snapshot store, but refuses to create the snapshot of a restore
// whose index or term is not the one the state was rewritten for.
type restoreGuard struct {
	raft.SnapshotStore

	mu      sync.Mutex
	armed   bool
	index   uint64 // the restore snapshot's, while armed
	term    uint64
	refused bool
}

func (g *restoreGuard) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	g.mu.Lock()
	// The snapshots raft takes of the FSM are of applied entries, below
	// the restore's index; only the restore's own is at or past it.
	if g.armed && index >= g.index && (index != g.index || term != g.term) {
		g.refused = true
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: predicted %d in term %d, raft numbered it %d in term %d", errRestoreMoved, g.index, g.term, index, term)
	}
	g.mu.Unlock()
	return g.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
}

func (g *restoreGuard) arm(index, term uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.index, g.term, g.refused = true, index, term, false
}

// disarm ends the guard and reports whether it refused the restore.
func (g *restoreGuard) disarm() (refused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = false
	return g.refused
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Index uint64 // the raft index of the restored state
	Term  uint64
}

// Restore replaces the state of the whole cluster with the state file at
// path, which the caller has checked to be sealed under this cluster's
// root key; the file is rewritten in place. It must be called on the
// leader: elsewhere it returns an error wrapping ErrNotLeader. The nodes'
// reports in the file are dropped (every node writes its own again) and
// the cluster id is this cluster's, not the backup's.
//
// Restore returns once the leader has restored its state and a following
// entry has been committed, which a majority can only have accepted after
// installing the restored state.
func (n *Node) Restore(ctx context.Context, path string) (RestoreResult, error) {
	n.restoreMu.Lock()
	defer n.restoreMu.Unlock()
	c, err := n.restoreChange()
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if !n.IsLeader() {
			id, _ := n.Leader()
			return RestoreResult{}, fmt.Errorf("restore: %w (the leader is %q)", ErrNotLeader, id)
		}
		res := RestoreResult{Index: n.raft.LastIndex() + restoreGap, Term: n.raft.CurrentTerm()}
		if err := n.cfg.Store.RewriteForRestore(path, res.Index, res.Term, c); err != nil {
			return RestoreResult{}, fmt.Errorf("restore: %w", err)
		}
		err := n.restoreFile(ctx, path, res)
		if errors.Is(err, errRestoreMoved) && attempt < restoreAttempts {
			n.logger.Info("Raft numbered the restore snapshot other than predicted; trying again", slog.Int("attempt", attempt))
			continue
		}
		if err != nil {
			return RestoreResult{}, fmt.Errorf("restore: %w", err)
		}
		n.logger.Warn("Restored the state of the cluster from a backup", slog.Uint64("index", res.Index), slog.Uint64("term", res.Term))
		return res, nil
	}
}

// restoreChange is the change a restored state gets: no node reports, and
// this cluster's id.
func (n *Node) restoreChange() (kv.Change, error) {
	c := kv.Change{Apply: []kv.Mutation{
		{Kind: kv.DeleteBucket, Bucket: nodesBucket},
		{Kind: kv.Delete, Bucket: clusterBucket, Name: clusterIDName},
	}}
	e, err := n.cfg.Store.Get(clusterBucket, clusterIDName)
	if errors.Is(err, kv.ErrNotExist) {
		return c, nil // the leader records a new one
	}
	if err != nil {
		return c, fmt.Errorf("read the cluster id: %w", err)
	}
	sealed, err := n.cfg.Store.Seal(clusterBucket, clusterIDName, e.Value)
	clear(e.Value)
	if err != nil {
		return c, err
	}
	c.Apply[1] = kv.Mutation{Kind: kv.Put, Bucket: clusterBucket, Name: clusterIDName, Value: sealed}
	return c, nil
}

// restoreFile hands the rewritten file to raft.
func (n *Node) restoreFile(ctx context.Context, path string, res RestoreResult) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	timeout := time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: res.Index - 1, Term: res.Term, Size: fi.Size()}
	n.guard.arm(res.Index, res.Term)
	err = n.raft.Restore(meta, f, timeout)
	if refused := n.guard.disarm(); refused {
		return fmt.Errorf("%w: %w", errRestoreMoved, err)
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}
