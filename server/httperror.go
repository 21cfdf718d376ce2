package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
)

// httpError is an error of the HTTP layer itself (a body too large, a
// malformed path) that has no kms.Code. Message is safe for the client.
type httpError struct {
	Status  int
	Message string
}

func (e *httpError) Error() string { return e.Message }

var (
	errBodyTooLarge    = &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
	errBodyTimeout     = &httpError{http.StatusRequestTimeout, "request body not received in time"}
	errNotFound        = &httpError{http.StatusNotFound, "not found"}
	errMethod          = &httpError{http.StatusMethodNotAllowed, "method not allowed"}
	errEncodedSlash    = &httpError{http.StatusBadRequest, "invalid path: names must not contain an encoded slash"}
	errRequestTimedOut = &httpError{http.StatusServiceUnavailable, "request timed out"}
	errInternal        = &httpError{http.StatusInternalServerError, "internal error"}
)

// The failures of the cluster layer that a client must tell apart, by
// shorter names; clusterErrors decides their answers in one place.
var (
	errNoLeader       = cluster.ErrNoLeader
	errStale          = cluster.ErrStale
	errOverloaded     = cluster.ErrOverloaded
	errOutcomeUnknown = cluster.ErrOutcomeUnknown
	errAlreadyMember  = cluster.ErrAlreadyMember
	errNotMember      = cluster.ErrNotMember
	errRefused        = cluster.ErrRefused
)

// clusterError is how one cluster failure is answered.
type clusterError struct {
	err    error
	status int
	// message is what the client sees; "" shows the error's own text,
	// which says which node and why.
	message string
	// retryAfter, if set, is sent as the Retry-After header: the request
	// was not acted on and may be sent again after that many seconds.
	retryAfter string
}

// clusterErrors answers the cluster failures. The messages of the first
// three are the api package's, which clients compare.
var clusterErrors = []clusterError{
	{err: errNoLeader, status: http.StatusServiceUnavailable, message: api.ErrNoLeader.Message},
	{err: errStale, status: http.StatusServiceUnavailable, message: staleMessage},
	{err: errOverloaded, status: http.StatusServiceUnavailable, message: api.ErrOverloaded.Message, retryAfter: "1"},
	{err: errOutcomeUnknown, status: http.StatusInternalServerError, message: api.ErrOutcomeUnknown.Message},
	{err: errAlreadyMember, status: http.StatusConflict},
	{err: errNotMember, status: http.StatusNotFound},
	{err: errRefused, status: http.StatusBadRequest},
}

// staleMessage answers a key operation on a follower cut off from the
// leader for longer than cluster.max_stale. It starts like api.ErrNoLeader,
// so that clients treat it alike: try another node.
const staleMessage = "no leader: this node has lost contact with the leader for longer than cluster.max_stale"

// clusterErrorOf returns the entry of clusterErrors that err wraps.
func clusterErrorOf(err error) (clusterError, bool) {
	for _, ce := range clusterErrors {
		if errors.Is(err, ce.err) {
			return ce, true
		}
	}
	return clusterError{}, false
}

// statusOf maps an error to the HTTP status and the message the client
// sees. Exists is 400 on the KES-compatible routes, as KES answers, and 409
// on the native ones; Conflict (a key changed concurrently) is 409 on both. Internal errors are shown as "internal error" only.
// A cluster failure is answered as clusterErrors says, also when a kms
// error wraps it (kms wraps what it does not know as internal).
func statusOf(err error, native bool) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status, he.Message
	}
	if ce, ok := clusterErrorOf(err); ok {
		if ce.message == "" {
			return ce.status, err.Error()
		}
		return ce.status, ce.message
	}
	var ke *kms.Error
	if !errors.As(err, &ke) {
		if errors.Is(err, context.DeadlineExceeded) {
			return errRequestTimedOut.Status, errRequestTimedOut.Message
		}
		return errInternal.Status, errInternal.Message
	}
	switch ke.Code {
	case kms.Invalid:
		return http.StatusBadRequest, ke.Message
	case kms.NotFound:
		return http.StatusNotFound, ke.Message
	case kms.Exists:
		if native {
			return http.StatusConflict, ke.Message
		}
		return http.StatusBadRequest, ke.Message
	case kms.Forbidden:
		return http.StatusForbidden, ke.Message
	case kms.Unauthenticated:
		return http.StatusUnauthorized, ke.Message
	case kms.Conflict:
		// Not 503: the cluster is fine, and 503 sends clients to
		// another node. Nothing was changed; the request may be sent again.
		return http.StatusConflict, ke.Message
	case kms.Unavailable:
		return http.StatusServiceUnavailable, ke.Message
	default:
		if errors.Is(err, context.DeadlineExceeded) {
			return errRequestTimedOut.Status, errRequestTimedOut.Message
		}
		return errInternal.Status, errInternal.Message
	}
}

// isProbe reports whether path is a health or readiness probe's.
func isProbe(path string) bool {
	return path == "/v1/ready" || strings.HasPrefix(path, "/v1/health/")
}

// writeError answers err as {"message": ...} with its status. Internal
// errors are logged in full with the request id; the client sees only
// "internal error".
//
// A request that ran out of time is answered 503 "request timed out" (kms
// says so for its own errors, statusOf for the others); one whose client
// went away is logged at debug level only, as nobody is left to answer and
// nothing is broken.
//
// A probe's 503 (not ready) is logged at debug level only.
//
// It is the one place that sets Retry-After, on the answers that
// clusterErrors gives one.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, msg := statusOf(err, isNative(r.Context()))
	if ce, ok := clusterErrorOf(err); ok && ce.retryAfter != "" {
		w.Header().Set("Retry-After", ce.retryAfter)
	}
	if status == http.StatusInternalServerError || status == http.StatusServiceUnavailable {
		level := slog.LevelError
		if status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		if errors.Is(r.Context().Err(), context.Canceled) {
			level = slog.LevelDebug
		}
		if status == http.StatusServiceUnavailable && isProbe(r.URL.Path) {
			// "Not ready" is the probe's answer, not a failure: load
			// balancers and `minkms server --dev` ask every few seconds
			// or faster, and the node logs why it is not ready itself.
			level = slog.LevelDebug
		}
		log.Log(r.Context(), level, "Request failed",
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Any("error", err))
	}
	writeJSON(w, status, api.ErrorResponse{Message: msg})
}
