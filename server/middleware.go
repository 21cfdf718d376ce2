package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// MaxRequestBody is the largest request body a node reads.
const MaxRequestBody = 1 << 20

// requestInfo travels in a request's context; middleware further in fills
// it for the middleware further out (access log, metrics).
type requestInfo struct {
	id       string
	native   bool
	identity kms.Identity
	caller   kms.Caller     // zero until authenticate: see authenticated
	route    string         // the route's pattern, once routed (see handle)
	batch    map[string]int // a batch's items per action, for its audit record

	// Parts of the request's state kept here so that they cost no
	// allocations of their own: the X-Request-Id header value, the
	// status the request answered (written through w) and the audit
	// writer.
	idHeader [1]string
	w        statusWriter
	audit    auditWriter

	// bodyDone is set once the request's body has been read (or there
	// is none): from then on the stall guard has no reads to cut.
	bodyDone atomic.Bool
}

// authenticated reports whether authenticate has set the caller: every
// caller kms.Service.Caller returns has an identity.
func (ri *requestInfo) authenticated() bool { return ri.caller.Identity != "" }

type requestInfoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

func requestID(ctx context.Context) string { return info(ctx).id }
func isNative(ctx context.Context) bool    { return info(ctx).native }

// callerOf returns the authenticated caller of the request. Handlers behind
// authenticate only call it.
func callerOf(ctx context.Context) kms.Caller {
	return info(ctx).caller
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	req    *requestCtx // nil: not the writer of a request's context
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// SetReadDeadline and SetWriteDeadline (what http.ResponseController
// calls) set the handler's own deadline, which the stall guard then
// leaves alone (stall.go).
func (w *statusWriter) SetReadDeadline(t time.Time) error {
	if w.req != nil {
		w.req.ownDeadline(cutRead)
	}
	return http.NewResponseController(w.ResponseWriter).SetReadDeadline(t)
}

func (w *statusWriter) SetWriteDeadline(t time.Time) error {
	if w.req != nil {
		w.req.ownDeadline(cutWrite)
	}
	return http.NewResponseController(w.ResponseWriter).SetWriteDeadline(t)
}

func (w *statusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// withRequestInfo gives the request its context (reqctx.go): an id
// (X-Request-Id), the info the other middleware fill in, and the status
// it answers. It comes first. With mux, the context also holds chi's
// routing context for mux.
func withRequestInfo(next http.Handler) http.Handler { return withRequest(next, nil, nil) }

func withRequest(next http.Handler, mux chi.Routes, guard *stallGuard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, w, r := newRequest(w, r, mux, guard)
		defer c.release()
		next.ServeHTTP(w, r)
	})
}

// recordStatus returns the recorder of the status r answers, and the
// writer to answer through: the request info's recorder, which every
// writer of the request writes through, and w itself; without request
// info, a new recorder that wraps w, as both.
func recordStatus(r *http.Request, w http.ResponseWriter) (*statusWriter, http.ResponseWriter) {
	if ri := info(r.Context()); ri.w.ResponseWriter != nil {
		return &ri.w, w
	}
	sw := &statusWriter{ResponseWriter: w}
	return sw, sw
}

// recoverPanics turns a panic in a handler into 500 "internal error" and
// logs it with its stack, so that no request can take the node down.
func (h *handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, w := recordStatus(r, w)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			h.log.ErrorContext(r.Context(), "Handler panicked; the request failed with 500 internal error",
				slog.String("request_id", requestID(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
			if sw.status == 0 {
				writeJSON(w, errInternal.Status, map[string]string{"message": errInternal.Message})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog logs every request at debug level.
func (h *handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw, w := recordStatus(r, w)
		next.ServeHTTP(w, r)
		ri := info(r.Context())
		h.log.DebugContext(r.Context(), "Request",
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.EscapedPath()),
			slog.String("identity", string(ri.identity)),
			slog.Int("status", sw.Status()),
			slog.Duration("duration", time.Since(start)))
	})
}

// limitBody refuses bodies over MaxRequestBody with 413: at once when the
// Content-Length says so, else when a handler reads past the limit. A
// restore, whose body is a whole backup, has a limit of its own.
func (h *handler) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == restorePath && r.Method == http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		limit, tooLarge := int64(MaxRequestBody), errBodyTooLarge
		if isBatchPath(r.URL.Path) { // batch.go
			limit, tooLarge = api.MaxBatchBody, errBatchTooLarge
		}
		if r.ContentLength > limit {
			writeError(w, r, h.log, tooLarge)
			return
		}
		// A body with a Content-Length cannot run past it: net/http reads
		// no more on HTTP/1.1 and resets an HTTP/2 stream that sends
		// more. Only a body of unknown length needs the reader's limit.
		if r.ContentLength < 0 {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// rejectEncodedSlash refuses, before routing, a path with an encoded slash
// or backslash: a name can never hold one, and routing on the decoded path
// would make "a%2Fb" look like two segments.
func (h *handler) rejectEncodedSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := strings.ToLower(r.URL.EscapedPath())
		if strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
			writeError(w, r, h.log, errEncodedSlash)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// timeout bounds the request's context: the requestCtx's deadline, whose
// timer starts only if something waits (reqctx.go); else a context of its
// own.
func timeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := r.Context().(*requestCtx); ok && c.setDeadline(time.Now().Add(d)) {
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// native marks the routes that answer conflicts with 409 and decode
// request bodies strictly.
func native(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).native = true
		next.ServeHTTP(w, r)
	})
}

// validateParams checks every name in the path before anything else reads
// it: names and enclaves with kms.ValidName, identities with
// kms.ParseIdentity, versions as positive numbers, list prefixes by their
// characters.
func (h *handler) validateParams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		if rctx != nil {
			for i, k := range rctx.URLParams.Keys {
				if err := validateParam(r, k, rctx.URLParams.Values[i]); err != nil {
					writeError(w, r, h.log, err)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate resolves the caller from the client certificate: none is
// 401 "no client certificate", an unknown identity 403. A connection that
// made an authenticated request is no longer closed for idling
// unauthenticated (see connlimit.go).
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeError(w, r, h.log, kms.ErrNoIdentity)
			return
		}
		ri := info(r.Context())
		ri.identity = identityOf(r.Context(), r.TLS.PeerCertificates[0]) // connlimit.go
		caller, err := h.svc.Caller(r.Context(), ri.identity)
		if err != nil {
			// auditRequests logs the denial, rate-limited: anyone can
			// send requests with unknown identities.
			writeError(w, r, h.log, err)
			return
		}
		ri.caller = caller
		markAuthenticated(r.Context())
		next.ServeHTTP(w, r)
	})
}

// syncer catches this node up with the leader: see cluster.Node.Sync.
type syncer interface {
	Sync(ctx context.Context) error
}

var errConsistentUnavailable = &kms.Error{Code: kms.Unavailable, Message: "no leader: a consistent read needs the leader, which this node cannot reach now"}

// consistentReads serves a GET with ?consistent=true only after this node
// has applied every write acknowledged anywhere before the request (a read
// index from the leader): a list or describe then sees everything another
// node has acknowledged. Without it reads are served from the local
// replica, which on a follower may lag by a heartbeat. Any other value of
// the parameter is refused.
func (h *handler) consistentReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Has("consistent") {
			switch r.URL.Query().Get("consistent") {
			case "true", "1":
				if h.replica == nil {
					writeError(w, r, h.log, errConsistentUnavailable)
					return
				}
				if err := h.replica.Sync(r.Context()); err != nil {
					writeError(w, r, h.log, fmt.Errorf("%w: %w", errConsistentUnavailable, err))
					return
				}
			case "false", "0", "":
			default:
				writeError(w, r, h.log, kms.Invalidf("invalid consistent=%q: use true or false", r.URL.Query().Get("consistent")))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
