//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/minkms/minkms/internal/devdir"
)

// TestDevClusterRemovesStaleDirs: the dev cluster supervisor removes the
// directories of dev nodes and clusters that were killed, owns its own (a
// pid file and a held lock), and removes it at Stop.
func TestDevClusterRemovesStaleDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, "minkms-dev-cluster-stale")
	if err := os.MkdirAll(filepath.Join(stale, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, devdir.LockFile), nil, 0o600)
	os.WriteFile(filepath.Join(stale, devdir.PIDFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o600)

	d, err := newDevCluster(3, devBasePort, devOptions{}, new(syncBuffer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale %s is still there (%v)", stale, err)
	}
	if pid, err := os.ReadFile(filepath.Join(d.Dir, devdir.PIDFile)); err != nil || string(pid) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("pid file = %q, %v; want %d", pid, err, os.Getpid())
	}
	if got := devdir.RemoveStale(tmp); len(got) != 0 {
		t.Errorf("RemoveStale removed %v while the supervisor runs", got)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s (%v)", d.Dir, err)
	}
}
