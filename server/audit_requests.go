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
		aw := &info(r.Context()).audit // no allocation of its own
		*aw = auditWriter{ResponseWriter: w, h: h, r: r, start: time.Now()}
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
	if ri.authenticated() {
		rec.Enclave = ri.caller.Enclave
	}
	rec.Action, rec.Object, rec.Enclave = actionOf(r, rec.Enclave)
	rec.Batch = ri.batch
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		w.h.denied(r, rec, !ri.authenticated())
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
	if e := rctx.URLParam("enclave"); e != "" {
		enclave = e
	}
	ra := routeActionOf(routeOf(r), r.Method)
	if ra.object != "" {
		object = rctx.URLParam(ra.object)
	}
	return ra.action, object, enclave
}

// routeOf returns the pattern of the route r took: the one handle noted,
// else chi's; "" when no route matched.
func routeOf(r *http.Request) string {
	if p := info(r.Context()).route; p != "" {
		return p
	}
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		return rctx.RoutePattern()
	}
	return ""
}

// routeAction is the action of a route and the path parameter that names
// its object ("": none).
type routeAction struct{ action, object string }

// routeActions caches routeAction per route pattern and method. Both come
// from chi's routing, not from the client: the patterns are the routes',
// the methods those chi routes, so the cache is bounded.
var routeActions sync.Map // [2]string{pattern, method} -> routeAction

func routeActionOf(pattern, method string) routeAction {
	k := [2]string{pattern, method}
	if v, ok := routeActions.Load(k); ok {
		return v.(routeAction)
	}
	ra := deriveRouteAction(pattern, method)
	routeActions.Store(k, ra)
	return ra
}

func deriveRouteAction(pattern, method string) routeAction {
	if a, ok := fixedActions[pattern]; ok {
		return routeAction{action: a}
	}
	if rest, ok := strings.CutPrefix(pattern, "/v1/key/"); ok {
		op, _, _ := strings.Cut(rest, "/")
		obj := "name"
		if op == "list" {
			obj = "prefix"
		}
		return routeAction{"key:" + op, obj}
	}
	if rest, ok := strings.CutPrefix(pattern, "/v1/enclaves"); ok {
		parts := strings.Split(strings.Trim(rest, "/"), "/")
		// "", "{enclave}", "{enclave}/keys", "{enclave}/keys/{name}", "{enclave}/keys/{name}/op", ".../versions/{version}"
		noun, obj := "enclave", "enclave"
		if len(parts) >= 2 {
			switch parts[1] {
			case "identities":
				noun, obj = "identity", "identity"
			case "policies":
				noun, obj = "policy", "name"
			default:
				noun, obj = "key", "name"
			}
		}
		if parts[0] == "" {
			obj = ""
		}
		switch {
		case len(parts) == 4 && parts[1] == "keys":
			return routeAction{"key:" + parts[3], obj}
		case len(parts) > 4:
			return routeAction{"key:delete", obj} // a key version
		case method == http.MethodGet && (parts[0] == "" || len(parts) == 2):
			return routeAction{noun + ":list", obj}
		case method == http.MethodGet:
			return routeAction{noun + ":describe", obj}
		case method == http.MethodDelete:
			return routeAction{noun + ":delete", obj}
		default:
			return routeAction{noun + ":create", obj}
		}
	}
	if strings.HasPrefix(pattern, "/v1/cluster/") {
		return routeAction{"cluster:" + strings.ToLower(method), "id"}
	}
	return routeAction{}
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
