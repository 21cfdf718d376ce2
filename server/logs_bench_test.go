package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/minkms/minkms/server/journal"
)

// BenchmarkRequestLogging measures what logging and auditing add to one
// request: "bare" is the request id alone, "audit" adds the audit record
// (ring and background audit file) at the default INFO level, "audit+debug"
// adds the debug access log line too (JSON to stderr and the ring).
//
//	go test -run '^$' -bench BenchmarkRequestLogging -benchmem ./server/
func BenchmarkRequestLogging(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	run := func(b *testing.B, level slog.Level, audit bool) {
		lv := new(slog.LevelVar)
		lv.Set(level)
		j := journal.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: everything}), journal.Options{Level: lv})
		h := &handler{log: j.Logger(), journal: j}
		if audit {
			a, err := newAuditTrail(j, h.log, LogConfig{AuditFile: filepath.Join(b.TempDir(), "audit.log")})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			h.audit = a
		}
		chain := withRequestInfo(h.accessLog(h.auditRequests(ok)))
		req := httptest.NewRequest(http.MethodPut, "/v1/key/encrypt/my-key", nil)
		b.ReportAllocs()
		for b.Loop() {
			chain.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, slog.LevelInfo, false) })
	b.Run("audit", func(b *testing.B) { run(b, slog.LevelInfo, true) })
	b.Run("audit+debug", func(b *testing.B) { run(b, slog.LevelDebug, true) })
}
