//go:build unix

package devdir

import (
	"errors"
	"os"
	"syscall"
)

// lock opens (with create, creates) the file and takes an exclusive flock
// on it without waiting. The lock lasts until the file is closed or the
// process ends. The descriptor is close-on-exec: child processes do not
// inherit the lock.
func lock(path string, create bool) (*os.File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}

// alive reports whether a process of that id exists (also one of another
// user, which signal 0 is not allowed to reach).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
