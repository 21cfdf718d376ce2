//go:build unix

package server

import (
	"syscall"
	"testing"
)

// TestOpenFileLimitRaised: the Go runtime raises the soft RLIMIT_NOFILE to
// the hard limit (less one) at start, so the node does not do it itself
// and derives limits.max_connections from the raised value.
func TestOpenFileLimitRaised(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	got, err := openFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(lim.Max) > 0 && got+1 < uint64(lim.Max) {
		t.Errorf("soft open-file limit %d, hard %d: the runtime did not raise it", got, lim.Max)
	}
}
