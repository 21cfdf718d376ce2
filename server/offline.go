package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage"
)

// offlineLockTimeout is how long OpenOffline waits for the state file's
// lock before it decides that the node is running.
const offlineLockTimeout = cluster.RecoverLockTimeout

// OpenOffline opens the state of a stopped node, as cfg describes it and
// the way the node opens it at start (the root key, checked against the
// data directory, opens the state file), for commands that work on a data
// directory while its node is stopped, such as "minkms cluster recover".
// The caller closes the state.
//
// A state file that a running node holds is refused within about a second
// with an error wrapping cluster.ErrRunning; a data directory without a
// state file with one wrapping fs.ErrNotExist, and nothing is created; a
// wrong root key as New refuses it, with one wrapping ErrRootKey.
func OpenOffline(cfg *Config) (*storage.DB, error) {
	if cfg == nil || cfg.DataDir == "" {
		return nil, errors.New("server: config: no data directory")
	}
	path := filepath.Join(cfg.DataDir, StateFile)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the data directory %s holds no state file (%s): check data_dir in the config: %w", cfg.DataDir, StateFile, err)
		}
		return nil, fmt.Errorf("opening the state: %w", err)
	}
	db, check, err := openStateFile(cfg, storage.Options{LockTimeout: offlineLockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked by another process", cluster.ErrRunning, path)
	}
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := writeRootKeyCheck(cfg.DataDir, check); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}
