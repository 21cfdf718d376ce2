//go:build unix

package devdir_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/minkms/minkms/internal/devdir"
)

// DeadPID returns the id of a process that has exited.
func DeadPID(tb testing.TB) int {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		tb.Fatal(err)
	}
	return cmd.Process.Pid
}

// MustDir makes a development directory in parent as a process with that
// pid would, without its lock held.
func MustDir(tb testing.TB, parent, name string, pid int, pidFile bool) string {
	tb.Helper()
	dir := filepath.Join(parent, name)
	for _, err := range []error{
		os.MkdirAll(filepath.Join(dir, "certs"), 0o700),
		os.WriteFile(filepath.Join(dir, "certs", "ca.key"), []byte("secret"), 0o600),
		os.WriteFile(filepath.Join(dir, devdir.LockFile), nil, 0o600),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	if pidFile {
		if err := os.WriteFile(filepath.Join(dir, devdir.PIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestRemoveStale(t *testing.T) {
	parent := t.TempDir()
	t.Setenv("TMPDIR", parent)
	dead := DeadPID(t)
	stale := MustDir(t, parent, "minkms-dev-111", dead, true)
	staleCluster := MustDir(t, parent, "minkms-dev-cluster-222", dead, true)
	noPID := MustDir(t, parent, "minkms-dev-333", 0, false)            // being created, or not ours
	livePID := MustDir(t, parent, "minkms-dev-444", os.Getpid(), true) // unlocked, but its process runs
	other := MustDir(t, parent, "other-555", dead, true)               // not a dev directory
	live, err := devdir.Create("minkms-dev-")                          // locked by this process
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	if filepath.Dir(live.Path) != parent {
		t.Fatalf("Create made %s, want it in %s", live.Path, parent)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("Create left the stale %s behind: %v", stale, err)
	}

	// Create cleaned already; make the stale ones again and clean by hand.
	stale = MustDir(t, parent, "minkms-dev-111", dead, true)
	if got := devdir.RemoveStale(parent); !slices.Equal(got, []string{stale}) {
		t.Errorf("RemoveStale = %v, want [%s]", got, stale)
	}
	for _, dir := range []string{noPID, livePID, other, live.Path} {
		if _, err := os.Stat(filepath.Join(dir, devdir.LockFile)); err != nil {
			t.Errorf("%s was touched: %v", dir, err)
		}
	}
	if _, err := os.Stat(staleCluster); !os.IsNotExist(err) {
		t.Errorf("the stale dev cluster directory %s is still there: %v", staleCluster, err)
	}
	if err := live.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s: %v", live.Path, err)
	}
}

// TestLockHeldByAnotherProcess: a directory whose lock another process
// holds is kept, whatever its pid file says.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if os.Getenv("DEVDIR_HOLD") != "" {
		d, err := devdir.Create("minkms-dev-")
		if err != nil {
			os.Exit(2)
		}
		os.WriteFile(filepath.Join(d.Path, devdir.PIDFile), []byte("999999999\n"), 0o600) // a pid that does not exist
		os.Stdout.WriteString(d.Path + "\n")
		var b [1]byte
		os.Stdin.Read(b[:]) // hold the lock until the test closes stdin
		os.Exit(0)
	}
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), "DEVDIR_HOLD=1", "TMPDIR="+parent)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	var line []byte
	for b := make([]byte, 1); ; {
		if _, err := out.Read(b); err != nil {
			t.Fatalf("the holder printed no directory: %v", err)
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	held := string(line)
	if got := devdir.RemoveStale(parent); len(got) != 0 {
		t.Fatalf("RemoveStale = %v, want nothing: the lock is held", got)
	}
	stdin.Close()
	cmd.Wait()
	if got := devdir.RemoveStale(parent); !slices.Equal(got, []string{held}) {
		t.Fatalf("after the holder exited, RemoveStale = %v, want [%s]", got, held)
	}
}
