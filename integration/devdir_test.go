package integration_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/internal/devdir"
)

// TestDevStaleDirsRemoved: a dev node killed with SIGKILL leaves its
// directory, with the dev CA key, behind; the next dev start removes it,
// and never the directory of a dev node (or test) that still runs.
func TestDevStaleDirsRemoved(t *testing.T) {
	tmp := t.TempDir()
	dead := exec.Command(binary, "version")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mkdir := func(name string, pid int) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "certs", "ca.key"), []byte("a dev CA key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, devdir.LockFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, devdir.PIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mkdir("minkms-dev-stale", dead.Process.Pid)
	staleCluster := mkdir("minkms-dev-cluster-stale", dead.Process.Pid)
	live := mkdir("minkms-dev-live", os.Getpid())
	lock, err := os.OpenFile(filepath.Join(live, devdir.LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	out := &syncBuffer{}
	cmd := exec.Command(binary, "server", "--dev", "--address", freeAddr(t))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	caRE := regexp.MustCompile(`MINKMS_CACERT=(\S+)`)
	var m []string
	waitFor(t, 30*time.Second, "the development node to print its export line", func() bool {
		m = caRE.FindStringSubmatch(out.String())
		return m != nil
	})
	for _, dir := range []string{stale, staleCluster} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the stale %s is still there (%v)", filepath.Base(dir), err)
		}
	}
	if _, err := os.Stat(filepath.Join(live, "certs", "ca.key")); err != nil {
		t.Errorf("the directory of a running dev node was touched: %v", err)
	}
	own := filepath.Dir(filepath.Dir(m[1])) // .../minkms-dev-XXXX/certs/ca.crt
	if filepath.Dir(own) != tmp {
		t.Fatalf("the dev node's directory %s is not in TMPDIR %s", own, tmp)
	}
	if pid, err := os.ReadFile(filepath.Join(own, devdir.PIDFile)); err != nil || string(pid) != strconv.Itoa(cmd.Process.Pid)+"\n" {
		t.Errorf("pid file of the dev node = %q, %v; want %d", pid, err, cmd.Process.Pid)
	}

	// Killed, it leaves its directory; the next start removes it.
	_ = cmd.Process.Kill()
	<-done
	done <- nil
	if _, err := os.Stat(own); err != nil {
		t.Fatalf("SIGKILL removed the directory? %v", err)
	}
	next := exec.Command(binary, "server", "--dev", "--address", freeAddr(t))
	nextOut := &syncBuffer{}
	next.Stdout, next.Stderr = nextOut, nextOut
	next.Env = cmd.Env
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	nextDone := make(chan error, 1)
	go func() { nextDone <- next.Wait() }()
	t.Cleanup(func() {
		_ = next.Process.Signal(syscall.SIGINT)
		select {
		case <-nextDone:
		case <-time.After(20 * time.Second):
			_ = next.Process.Kill()
			<-nextDone
		}
	})
	waitFor(t, 30*time.Second, "the second development node to print its export line", func() bool {
		return caRE.MatchString(nextOut.String())
	})
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the killed dev node's directory %s is still there (%v)", own, err)
	}
	if _, err := os.Stat(filepath.Join(live, "certs", "ca.key")); err != nil {
		t.Errorf("the directory of a running dev node was touched: %v", err)
	}
}
