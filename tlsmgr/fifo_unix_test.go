//go:build unix

package tlsmgr_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
)

// TestReloadRefusesSpecialFiles: a FIFO in the place of a certificate or key
// is refused at once instead of blocking the reload (and every later one)
// until something writes to it.
func TestReloadRefusesSpecialFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   func(f *fixture) string
		reason tlsmgr.Reason
	}{
		{"CertFIFO", func(f *fixture) string { return f.pair.Cert }, tlsmgr.ReasonCertUnreadable},
		{"KeyFIFO", func(f *fixture) string { return f.pair.Key }, tlsmgr.ReasonKeyUnreadable},
		{"CAFIFO", func(f *fixture) string { return f.caPEM }, tlsmgr.ReasonCAUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			m := f.mustManager(t)
			before := servedSerial(m)
			path := tc.path(f)
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatalf("mkfifo: %v", err)
			}
			done := make(chan tlsmgr.ReloadResult, 1)
			go func() { done <- m.Reload(context.Background()) }()
			var res tlsmgr.ReloadResult
			select {
			case res = <-done:
			case <-time.After(5 * time.Second):
				unblockFIFO(path, done)
				t.Fatal("Reload blocked on a FIFO")
			}
			got, msg := res.Pairs[0].Reason, res.Pairs[0].Error
			if tc.reason == tlsmgr.ReasonCAUnreadable {
				got, msg = res.CA.Reason, res.CA.Error
			}
			if got != tc.reason || !strings.Contains(msg, "not a regular file") {
				t.Errorf("result %+v, want %s: not a regular file", res, tc.reason)
			}
			if servedSerial(m) != before {
				t.Error("the old certificate stopped serving")
			}
		})
	}
}

// unblockFIFO lets the readers blocked on the FIFO at path finish, until
// done is ready.
func unblockFIFO(path string, done <-chan tlsmgr.ReloadResult) {
	for {
		select {
		case <-done:
			return
		default:
		}
		// Opening for writing without blocking fails until a reader waits.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		time.Sleep(time.Millisecond)
	}
}
