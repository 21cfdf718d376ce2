package server

// An internal test: no request can make a real handler panic, so the
// recovery middleware is tested around one that does.

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minkms/minkms/kms"
)

func TestRecoverPanics(t *testing.T) {
	var logs bytes.Buffer
	h := &handler{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	panicky := withRequestInfo(h.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom: secret detail")
	})))

	rec := httptest.NewRecorder()
	panicky.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	var body struct{ Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Message != "internal error" {
		t.Errorf("body = %s, want {\"message\":\"internal error\"}", rec.Body)
	}
	if strings.Contains(rec.Body.String(), "boom") {
		t.Error("the panic value reached the client")
	}
	if !strings.Contains(logs.String(), "boom: secret detail") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the panic was not logged with its stack: %s", logs.String())
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		native bool
		status int
		msg    string
	}{
		{"ExistsKES", kms.ErrKeyExists, false, 400, "key already exists"},
		{"ExistsNative", kms.ErrKeyExists, true, 409, "key already exists"},
		{"Internal", errors.New("disk on fire"), false, 500, "internal error"},
		{"TooLarge", errBodyTooLarge, false, 413, "request body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg := statusOf(tt.err, tt.native)
			if status != tt.status || msg != tt.msg {
				t.Errorf("statusOf(%v, %v) = %d %q, want %d %q", tt.err, tt.native, status, msg, tt.status, tt.msg)
			}
		})
	}
}
