// Package devdir makes the temporary directories of development nodes
// (`minkms server --dev`, with or without --nodes) and removes those whose
// owner is gone.
//
// A development directory holds a CA private key and the state of a
// throw-away node. Its owner removes it at exit, but a process killed with
// SIGKILL cannot, so every start looks for the directories left behind and
// removes them. Whose owner is gone is decided by two files: the owner
// holds an exclusive flock on LockFile for as long as it runs (the kernel
// drops it when the process dies, however it dies), and PIDFile names the
// owner's process id. A directory is removed only when the lock can be
// taken and the process is gone; one without a pid file (being created,
// or not made by this package) is never touched. Nothing is cleaned where
// there is no flock.
//
// It is not for production data directories: those are never temporary.
package devdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Prefix starts the name of every development directory; the patterns
// given to Create must start with it.
const Prefix = "minkms-dev-"

// The files of ownership in a development directory.
const (
	LockFile = "owner.lock" // flocked by the owner while it runs
	PIDFile  = "owner.pid"  // the owner's process id, in decimal
)

// Dir is a development directory owned by this process.
type Dir struct {
	Path string
	lock *os.File
}

// Create removes the stale development directories of os.TempDir() and
// makes a new one there (os.MkdirTemp with pattern), owned by this process
// until Remove or exit.
func Create(pattern string) (*Dir, error) {
	if !strings.HasPrefix(pattern, Prefix) {
		return nil, fmt.Errorf("devdir: pattern %q does not start with %q", pattern, Prefix)
	}
	RemoveStale(os.TempDir())
	path, err := os.MkdirTemp("", pattern)
	if err != nil {
		return nil, err
	}
	// The lock first, the pid file second: a directory with a pid file is
	// locked while its owner lives.
	lock, err := lock(filepath.Join(path, LockFile), true)
	if err == nil {
		err = os.WriteFile(filepath.Join(path, PIDFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(path)
		return nil, fmt.Errorf("devdir: marking %s as ours: %w", path, err)
	}
	return &Dir{Path: path, lock: lock}, nil
}

// Remove removes the directory and gives up its ownership.
func (d *Dir) Remove() error {
	err := os.RemoveAll(d.Path)
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	return err
}

// RemoveStale removes the development directories in parent whose owner is
// gone and returns their paths. It never removes one whose owner runs, or
// that has no pid file.
func RemoveStale(parent string) []string {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue // a symlink is not a directory here: never followed
		}
		path := filepath.Join(parent, e.Name())
		if removeIfStale(path) {
			removed = append(removed, path)
		}
	}
	return removed
}

func removeIfStale(path string) bool {
	data, err := os.ReadFile(filepath.Join(path, PIDFile))
	if err != nil {
		return false // not ours to judge, or still being created
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	l, err := lock(filepath.Join(path, LockFile), false)
	if err != nil {
		return false // held: the owner runs (or no flock here)
	}
	defer l.Close()
	if alive(pid) {
		return false // the lock is free, yet the process exists: leave it
	}
	return os.RemoveAll(path) == nil
}

// errLocked is the error of lock when another process holds the lock.
var errLocked = errors.New("devdir: locked by another process")
