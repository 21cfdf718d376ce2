package server

// An internal test: no request can make a real handler panic, so the
// recovery middleware is tested around one that does.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
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

// TestPanicIsCounted: a request whose handler panics is counted in the
// metrics and access-logged as the 500 it answers, so that an alert on the
// rate of 5xx sees it.
func TestPanicIsCounted(t *testing.T) {
	registry, metrics, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := &handler{
		log:      slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		metrics:  metrics,
		registry: registry,
		timeout:  time.Second,
	}
	mux := h.router()
	mux.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })

	rec := httptest.NewRecorder()
	withRequest(mux, mux, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/panic", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if got := requestCount(t, h, "/panic", "500"); got != 1 {
		t.Errorf("minkms_http_requests_total{route=\"/panic\",code=\"500\"} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), `"msg":"Request"`) || !strings.Contains(logs.String(), `"status":500`) {
		t.Errorf("the access log has no line for the 500: %s", logs.String())
	}
}

// TestErrorOfEndedRequest: a request that ran out of time outside kms
// (which names its own timeouts) is told so rather than "internal error",
// and a request whose client went away is no warning for the operator.
func TestErrorOfEndedRequest(t *testing.T) {
	timedOut := fmt.Errorf("reading the request: %w", context.DeadlineExceeded)
	t.Run("TimedOut", func(t *testing.T) {
		var logs bytes.Buffer
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		rec := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodPut, "/v1/key/create/k", nil)
		writeError(rec, r, slog.New(slog.NewJSONHandler(&logs, nil)), timedOut)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"request timed out"`) {
			t.Errorf("answer = %d %s, want 503 request timed out", rec.Code, rec.Body)
		}
		if !strings.Contains(logs.String(), `"level":"WARN"`) {
			t.Errorf("a timed-out request is not logged as a warning: %s", logs.String())
		}
	})
	t.Run("ClientGone", func(t *testing.T) {
		var logs bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		r := httptest.NewRequestWithContext(ctx, http.MethodPut, "/v1/key/create/k", nil)
		err := fmt.Errorf("proposing: %w: %w", kms.ErrNoLeader, context.Canceled)
		writeError(rec, r, slog.New(slog.NewJSONHandler(&logs, nil)), err)
		if logs.Len() != 0 {
			t.Errorf("a request whose client went away is logged at INFO or above: %s", logs.String())
		}
	})
	t.Run("NoLeader", func(t *testing.T) {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPut, "/v1/key/create/k", nil)
		writeError(rec, r, slog.New(slog.DiscardHandler), fmt.Errorf("proposing: %w", kms.ErrNoLeader))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), kms.ErrNoLeader.Message) {
			t.Errorf("answer = %d %s, want 503 %q", rec.Code, rec.Body, kms.ErrNoLeader.Message)
		}
	})
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
		{"KeyChangedKES", fmt.Errorf("updating key: %w", kms.ErrKeyChanged), false, 409, api.ErrKeyChanged.Message},
		{"KeyChangedNative", fmt.Errorf("updating key: %w", kms.ErrKeyChanged), true, 409, "key changed concurrently: try again"},
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

// requestCount returns minkms_http_requests_total of a route and status.
func requestCount(t *testing.T, h *handler, route, code string) float64 {
	t.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "minkms_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestProbeNotReadyIsQuiet: a readiness probe's 503 is its answer, logged
// at debug level only; the same error on an API route is a warning, and an
// internal error on a probe is still an error.
func TestProbeNotReadyIsQuiet(t *testing.T) {
	notReady := fmt.Errorf("not ready: %w", kms.ErrNoLeader)
	for _, tc := range []struct {
		path string
		err  error
		want string // the level logged at INFO and above, "" for none
	}{
		{"/v1/health/ready", notReady, ""},
		{"/v1/ready", notReady, ""},
		{"/v1/key/create/k", notReady, "WARN"},
		{"/v1/health/ready", errors.New("boom"), "ERROR"},
	} {
		var logs bytes.Buffer
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodGet, tc.path, nil), slog.New(slog.NewJSONHandler(&logs, nil)), tc.err)
		got := ""
		for _, level := range []string{"WARN", "ERROR"} {
			if strings.Contains(logs.String(), `"level":"`+level+`"`) {
				got = level
			}
		}
		if got != tc.want {
			t.Errorf("%s %v: logged at %q, want %q: %s", tc.path, tc.err, got, tc.want, logs.String())
		}
	}
}
