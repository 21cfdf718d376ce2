package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/minkms/minkms/storage/kv"
)

// RootKeyVerifier says whether values carried by the raft log and its
// snapshots were written under the root key at hand. Both return an error
// when they were not.
type RootKeyVerifier struct {
	// Sealed checks a value sealed for bucket/name, as a Put carries it.
	Sealed func(bucket, name string, sealed []byte) error
	// StateFile checks a state file, as a raft snapshot holds one.
	StateFile func(path string) error
}

// VerifyRootKey checks the root key against what the raft log and the
// newest snapshot in dataDir carry, reading only: the first sealed value in
// the log and the snapshot's state file. A node whose state file and check
// file are both gone calls it before it writes anything, so that a wrong
// root key is refused instead of sealing a rebuilt state under it. With no
// raft state, or one that holds no sealed value yet, there is nothing to
// check against and it returns nil.
func VerifyRootKey(dataDir string, v RootKeyVerifier) error {
	dir := filepath.Join(dataDir, "raft")
	if snap := newestSnapshotFile(dir); snap != "" {
		if err := v.StateFile(snap); err != nil {
			return fmt.Errorf("the raft snapshot %s: %w", snap, err)
		}
		return nil
	}
	path := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second}})
	if err != nil {
		return fmt.Errorf("open the raft log %s: %w", path, err)
	}
	defer logs.Close()
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("read the raft log: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read the raft log: %w", err)
	}
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return fmt.Errorf("read raft log entry %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := DecodeCommand(l.Data)
		if err != nil {
			continue // a newer build's entry: the FSM says so when it reaches it
		}
		apply := cmd.StateChange().Apply
		i := slices.IndexFunc(apply, func(m kv.Mutation) bool { return m.Kind == kv.Put })
		if i < 0 {
			continue
		}
		m := apply[i]
		if err := v.Sealed(m.Bucket, m.Name, m.Value); err != nil {
			return fmt.Errorf("raft log entry %d in %s: %w", l.Index, path, err)
		}
		return nil
	}
	return nil
}

// newestSnapshotFile returns the state file of the newest snapshot in dir,
// "" if there is none (or it cannot be read: the start-up checks say why).
func newestSnapshotFile(dir string) string {
	meta, snapDir, err := newestSnapshot(dir)
	if err != nil || meta == nil {
		return ""
	}
	return filepath.Join(snapDir, "state.bin")
}

// newestSnapshot reads the metadata of the newest snapshot of raft's file
// snapshot store in dir (snapshots/<id>/{meta.json,state.bin}) and returns
// it with its directory; nil if there is none. It reads the directory
// itself: raft's store creates files when it is opened. A snapshot whose
// meta.json does not parse is an error naming it, rather than something
// raft trips over later.
func newestSnapshot(dir string) (*raft.SnapshotMeta, string, error) {
	root := filepath.Join(dir, "snapshots")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read raft snapshots: %w", err)
	}
	var (
		best    *raft.SnapshotMeta
		bestDir string
	)
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		snapDir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(snapDir, "meta.json"))
		if err != nil {
			return nil, "", fmt.Errorf("%w: raft snapshot %s: %w; %s", ErrState, snapDir, err, snapshotRemedy(snapDir))
		}
		var meta raft.SnapshotMeta
		if err := json.Unmarshal(b, &meta); err != nil || meta.Index == 0 || meta.Term == 0 || meta.ID == "" {
			if err == nil {
				err = errors.New("no id, index or term")
			}
			return nil, "", fmt.Errorf("%w: raft snapshot %s has a damaged meta.json: %w; %s", ErrState, snapDir, err, snapshotRemedy(snapDir))
		}
		fi, err := os.Stat(filepath.Join(snapDir, "state.bin"))
		if err != nil || fi.Size() != meta.Size {
			return nil, "", fmt.Errorf("%w: raft snapshot %s: state.bin is missing or not the size meta.json records (%d bytes); %s",
				ErrState, snapDir, meta.Size, snapshotRemedy(snapDir))
		}
		if best == nil || meta.Term > best.Term || meta.Term == best.Term && meta.Index > best.Index {
			m := meta
			best, bestDir = &m, snapDir
		}
	}
	return best, bestDir, nil
}

func snapshotRemedy(snapDir string) string {
	return fmt.Sprintf("move %s out of the snapshots directory and start again: the node then rebuilds from an older snapshot and the log, or, in a cluster, remove the node, empty its data directory and let it join again", snapDir)
}
