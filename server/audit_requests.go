package server

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minkms/minkms/api"
)

// auditRequests writes one audit record per API request (see audit.go),
// health probes and /version excepted, and logs every denial (401, 403)
// at INFO with the identity and the action. Denials of callers that are
// not authenticated are logged at most once a second, with the number
// left out since. The record never holds a body: no plaintext, key
// material, ciphertext, context or API key; only what the path, the
// caller and the status say.
//
// With log.audit_required the record is written when the handler answers,
// before the answer goes out, and a record that cannot be written turns
// the answer into 503; a request that arrives while the audit file
// cannot be written is refused before it acts.
func (h *handler) auditRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.audit == nil || unaudited(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		aw := &auditWriter{ResponseWriter: w, h: h, r: r, start: time.Now()}
		if h.audit.required {
			if err := h.audit.Ready(); err != nil {
				aw.refused = true
				aw.finish(errAuditUnavailable.Status)
				writeError(w, r, h.log, errAuditUnavailable)
				return
			}
		}
		next.ServeHTTP(aw, r)
		if !aw.done {
			aw.finish(aw.Status())
		}
	})
}

// unaudited reports whether requests to path are left out of the audit
// trail: the probes that load balancers send every few seconds.
func unaudited(path string) bool {
	return path == "/version" || strings.HasPrefix(path, "/v1/health/")
}

// auditWriter records the request when the handler answers (required
// mode) or when it returns.
type auditWriter struct {
	http.ResponseWriter
	h       *handler
	r       *http.Request
	start   time.Time
	status  int
	done    bool // the record was written
	refused bool // the record could not be written: the handler's answer is dropped
}

func (w *auditWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if w.h.audit.required {
		if err := w.finish(status); err != nil {
			w.refused = true
			writeError(w.ResponseWriter, w.r, w.h.log, errAuditUnavailable)
			return
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.refused {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *auditWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// finish writes the request's audit record with status, once, and logs a
// denial.
func (w *auditWriter) finish(status int) error {
	if w.done {
		return nil
	}
	w.done = true
	r := w.r
	ri := info(r.Context())
	rec := api.AuditRecord{
		Time: w.start, RequestID: ri.id, Identity: string(ri.identity),
		Method: r.Method, Path: r.URL.EscapedPath(), Status: status,
		Duration: time.Since(w.start), Remote: r.RemoteAddr,
	}
	if ri.caller != nil {
		rec.Enclave = ri.caller.Enclave
	}
	rec.Action, rec.Object, rec.Enclave = actionOf(r, rec.Enclave)
	rec.Batch = ri.batch
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		w.h.denied(r, rec, ri.caller == nil)
	}
	return w.h.audit.Record(rec)
}

// denials limits the log lines of unauthenticated denials.
type denials struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

// denied logs a denial at INFO: always for an authenticated caller, at
// most once a second for the others (with the count of those not logged).
func (h *handler) denied(r *http.Request, rec api.AuditRecord, unauthenticated bool) {
	attrs := []any{
		slog.String("request_id", rec.RequestID),
		slog.String("identity", rec.Identity),
		slog.String("action", rec.Action),
		slog.String("object", rec.Object),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.Int("status", rec.Status),
		slog.String("remote", rec.Remote),
	}
	msg := "Request denied"
	if unauthenticated {
		msg = "Request denied: unknown identity or no client certificate"
		d := &h.denials
		d.mu.Lock()
		if time.Since(d.last) < time.Second {
			d.dropped++
			d.mu.Unlock()
			return
		}
		d.last = time.Now()
		if d.dropped > 0 {
			attrs = append(attrs, slog.Int("not_logged_since", d.dropped))
		}
		d.dropped = 0
		d.mu.Unlock()
	}
	h.log.InfoContext(r.Context(), msg, attrs...)
}

// actionOf names what the request does, as policies name it, and the
// object it acts on, from the route it took. enclave is the caller's;
// the native routes name their own.
func actionOf(r *http.Request, enclave string) (action, object, encl string) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return "", "", enclave
	}
	pattern := rctx.RoutePattern()
	param := func(k string) string { return rctx.URLParam(k) }
	if e := param("enclave"); e != "" {
		enclave = e
	}
	if a, ok := fixedActions[pattern]; ok {
		return a, "", enclave
	}
	if rest, ok := strings.CutPrefix(pattern, "/v1/key/"); ok {
		op, _, _ := strings.Cut(rest, "/")
		obj := param("name")
		if op == "list" {
			obj = param("prefix")
		}
		return "key:" + op, obj, enclave
	}
	if rest, ok := strings.CutPrefix(pattern, "/v1/enclaves"); ok {
		parts := strings.Split(strings.Trim(rest, "/"), "/")
		// "", "{enclave}", "{enclave}/keys", "{enclave}/keys/{name}", "{enclave}/keys/{name}/op", ".../versions/{version}"
		noun, obj := "enclave", param("enclave")
		if len(parts) >= 2 {
			switch parts[1] {
			case "identities":
				noun, obj = "identity", param("identity")
			case "policies":
				noun, obj = "policy", param("name")
			default:
				noun, obj = "key", param("name")
			}
		}
		if parts[0] == "" {
			obj = ""
		}
		switch {
		case len(parts) == 4 && parts[1] == "keys":
			return "key:" + parts[3], obj, enclave
		case len(parts) > 4:
			return "key:delete", obj, enclave // a key version
		case r.Method == http.MethodGet && (parts[0] == "" || len(parts) == 2):
			return noun + ":list", obj, enclave
		case r.Method == http.MethodGet:
			return noun + ":describe", obj, enclave
		case r.Method == http.MethodDelete:
			return noun + ":delete", obj, enclave
		default:
			return noun + ":create", obj, enclave
		}
	}
	if strings.HasPrefix(pattern, "/v1/cluster/") {
		return "cluster:" + strings.ToLower(r.Method), param("id"), enclave
	}
	return "", "", enclave
}

// fixedActions names the actions of the routes that act on no object.
var fixedActions = map[string]string{
	"/v1/status":                 "node:status",
	"/v1/ready":                  "node:ready",
	"/v1/identity/self/describe": "identity:self",
	"/v1/metrics":                "metrics:read",
	"/v1/tls/status":             "tls:status",
	"/v1/tls/reload":             "tls:reload",
	"/v1/backup":                 "cluster:backup",
	restorePath:                  "cluster:restore",
	"/v1/logs":                   "log:read",
	"/v1/logs/audit":             "audit:read",
	"/v1/logs/level":             "log:level",
	"/v1/log/error":              "log:read",
	"/v1/log/audit":              "audit:read",
}
