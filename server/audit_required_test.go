package server_test

import (
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/server"
)

// TestAuditFileRotationAndRequired: the audit file is reopened on SIGHUP,
// as logrotate expects (the moved file keeps the old records, a new one
// gets the next); and with log.audit_required a request whose record cannot
// be written is refused with 503 before it acts, and served again once the
// file can be written.
func TestAuditFileRotationAndRequired(t *testing.T) {
	// Catch SIGHUP in the test process too, so that a signal sent before
	// the node's handler runs cannot end it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	dir := filepath.Join(t.TempDir(), "audit")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "audit.log")
	n := mustStartLogNode(t, slog.LevelInfo, func(cfg *server.Config) {
		cfg.Log.AuditFile, cfg.Log.AuditRequired = file, true
	})
	sighup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/before-rotation", nil, nil)
	t.Run("Rotation", func(t *testing.T) {
		if err := os.Rename(file, file+".1"); err != nil {
			t.Fatal(err)
		}
		sighup()
		waitFor(t, "the reopened audit file to get a new record", 10*time.Second, func() bool {
			n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/before-rotation", nil)
			data, _ := os.ReadFile(file)
			return strings.Contains(string(data), `"object":"before-rotation"`)
		})
		old, _ := os.ReadFile(file + ".1")
		if !strings.Contains(string(old), `"action":"key:create"`) {
			t.Errorf("the rotated file lost the create's record:\n%s", old)
		}
	})
	t.Run("Required", func(t *testing.T) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		sighup() // the reopen fails: the trail cannot be written
		waitFor(t, "requests to be refused while the audit file cannot be written", 10*time.Second, func() bool {
			r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/before-rotation", nil)
			return r.Status == http.StatusServiceUnavailable && strings.Contains(string(r.Body), "audit log unavailable")
		})
		if r := n.MustDo(t, n.admin, http.MethodPut, "/v1/key/create/unaudited", nil); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("create without an audit file = %d %s, want 503", r.Status, r.Body)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "requests to be served again", 10*time.Second, func() bool {
			r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/unaudited", nil)
			return r.Status != http.StatusServiceUnavailable
		})
		if r := n.MustDo(t, n.admin, http.MethodGet, "/v1/key/describe/unaudited", nil); r.Status != http.StatusNotFound {
			t.Errorf("the refused create acted: describe = %d %s, want 404", r.Status, r.Body)
		}
	})
}
