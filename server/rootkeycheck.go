package server

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/minkms/minkms/storage"
)

// RootKeyCheckFile is the file in the data directory that holds the check
// value of the root key the node's data was written under. The state file
// holds the same value; this copy outlives a lost or deleted state file, so
// that a node rebuilding its state from the raft log still refuses a wrong
// root key instead of sealing new values under it.
const RootKeyCheckFile = "root-key.check"

// verifyRootKeyCheck compares check with the data directory's check file.
// It reports whether the file was there; a missing file is not an error (a
// new node, or one from before the file existed).
func verifyRootKeyCheck(dataDir string, check []byte) (bool, error) {
	path := filepath.Join(dataDir, RootKeyCheckFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the root key check: %w", err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("%w: %s is damaged: restore it from a backup of this node or remove it if the state file is intact", ErrRootKey, path)
	}
	if subtle.ConstantTimeCompare(want, check) != 1 {
		return false, fmt.Errorf("%w: the root key does not open the state in %s: it was written under another root key (checked against %s), and the node refuses to start with this one: %w",
			ErrRootKey, dataDir, path, storage.ErrWrongRootKey)
	}
	return true, nil
}

// writeRootKeyCheck writes the check file atomically.
func writeRootKeyCheck(dataDir string, check []byte) error {
	path := filepath.Join(dataDir, RootKeyCheckFile)
	tmp, err := os.CreateTemp(dataDir, RootKeyCheckFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing the root key check: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(check) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the root key check: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the root key check: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the root key check: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the root key check: %w", err)
	}
	return nil
}
