package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/server/journal"
)

// healthTimeout bounds the routes that must answer fast whatever happens.
const healthTimeout = 5 * time.Second

// handler serves the client API of one node.
type handler struct {
	svc      *kms.Service
	log      *slog.Logger
	node     nodeInfo
	certs    certManager  // nil: the TLS routes answer 503
	cluster  clusterAdmin // nil: the membership routes answer 503
	metrics  *httpMetrics
	registry *prometheus.Registry
	timeout  time.Duration // per request, from limits.request_timeout
	replica  syncer        // nil: ?consistent=true answers 503
	backups  *backups      // nil: the backup routes answer 503
	health   healthSource  // nil: /v1/cluster/status answers 503
	peers    askNode       // nil: /v1/tls/status?node= answers 503

	journal  *journal.Journal // the node's log and audit rings
	audit    *auditTrail      // nil: no audit records (tests)
	denials  denials          // rate limit of unauthenticated denials in the log
	logPeers logPeers         // nil: node=all reads this node only
	// shutdown is closed when the node shuts down: log streams end.
	shutdown <-chan struct{}
	pprof    bool // debug.pprof: serve /debug/pprof/* to cluster admins
	// stalls cuts off slow clients' requests (stall.go); nil: nothing
	// does (tests that serve the handler on a server of their own).
	stalls *stallGuard
	// batchSlots bounds the batches a node decodes and runs at once
	// (batch.go); nil: no bound (tests).
	batchSlots chan struct{}
}

// apiFunc is a handler that returns its error for handle to answer.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts an apiFunc: one place writes every error.
func (h *handler) handle(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// chi set r.Pattern to the whole pattern of the route taken:
		// the metrics and the audit trail read it from here rather than
		// join chi's patterns again (routeOf).
		info(r.Context()).route = r.Pattern
		if err := f(w, r); err != nil {
			writeError(w, r, h.log, err)
		}
	}
}

// routes builds the router of the client API. Order matters: request id
// and context first (outside chi), metrics and access log around
// everything else, panic recovery inside them (so that a panic is counted
// and logged as the 500 it answers), the encoded-slash check before
// routing; then routing (the key operations by fastRoutes, the rest by
// chi) and, per route, name validation before authentication before the
// handler.
func (h *handler) routes() http.Handler {
	r := h.router()
	// The request's context (reqctx.go) comes before chi, so that chi
	// routes with the routing context it holds.
	return withRequest(r, r, h.stalls)
}

// router is the router of routes, without the request's context.
func (h *handler) router() *chi.Mux {
	r := chi.NewRouter()
	fast := &fastRoutes{} // built below, once the routes are registered
	r.Use(h.metrics.middleware, h.accessLog, h.auditRequests, h.recoverPanics, h.rejectEncodedSlash, h.limitBody, fast.middleware)
	r.NotFound(h.handle(func(http.ResponseWriter, *http.Request) error { return errNotFound }))
	r.MethodNotAllowed(h.handle(func(http.ResponseWriter, *http.Request) error { return errMethod }))

	// No client certificate needed.
	r.Group(func(r chi.Router) {
		r.Use(timeout(healthTimeout))
		r.Get("/version", h.handle(h.version))
		r.Get("/v1/health/live", h.handle(h.live))
		r.Get("/v1/health/ready", h.handle(h.ready))
	})

	// putOrPost registers f for PUT and POST: POST is accepted wherever PUT is.
	putOrPost := func(r chi.Router, pattern string, f apiFunc) {
		r.Put(pattern, h.handle(f))
		r.Post(pattern, h.handle(f))
	}

	// KES-compatible routes: the caller's own enclave, KES's errors.
	r.Group(func(r chi.Router) {
		r.Use(timeout(h.timeout), h.validateParams, h.authenticate, h.consistentReads)
		putOrPost(r, "/v1/key/create/{name}", h.kesCreateKey)
		putOrPost(r, "/v1/key/import/{name}", h.kesImportKey)
		r.Get("/v1/key/describe/{name}", h.handle(h.kesDescribeKey))
		r.Get("/v1/key/list", h.handle(h.kesListKeys))
		r.Get("/v1/key/list/", h.handle(h.kesListKeys))
		r.Get("/v1/key/list/{prefix}", h.handle(h.kesListKeys))
		r.Delete("/v1/key/delete/{name}", h.handle(h.kesDeleteKey))
		putOrPost(r, "/v1/key/generate/{name}", h.kesGenerateKey)
		putOrPost(r, "/v1/key/encrypt/{name}", h.kesEncrypt)
		putOrPost(r, "/v1/key/decrypt/{name}", h.kesDecrypt)
		putOrPost(r, "/v1/key/hmac/{name}", h.kesHMAC)
		putOrPost(r, "/v1/key/rewrap/{name}", h.kesRewrap)
		r.Get("/v1/status", h.handle(h.status))
		r.Get("/v1/ready", h.handle(h.ready))
		r.Get("/v1/identity/self/describe", h.handle(h.self))
		r.Get("/v1/metrics", h.kesMetrics) // KES's families only: kes_metrics.go
		r.Get("/v1/tls/status", h.handle(h.tlsStatusOfNode))
		putOrPost(r, "/v1/tls/reload", h.tlsReload)
	})

	// The Prometheus exposition at the path Prometheus scrapes by default:
	// cluster admins, and identities whose policy allows "metrics:read".
	r.Group(func(r chi.Router) {
		r.Use(timeout(h.timeout), h.authenticate, h.authorizeMetrics)
		r.Get("/metrics", h.allMetrics)
	})

	// Native routes: an explicit enclave, 409 for conflicts, strict bodies.
	// Registered with their whole paths in a group, not in a sub-router:
	// a group's middleware runs per route, after routing, when the path
	// parameters are known, and a request is routed once, not twice (the
	// second routing cost the key operations 1.5 % of a node's CPU).
	r.Group(func(r chi.Router) {
		r.Use(timeout(h.timeout), native, h.validateParams, h.authenticate, h.consistentReads)
		h.nativeRoutes(r, putOrPost)
	})

	// A batch in the caller's own enclave: native (batch.go).
	r.Group(func(r chi.Router) {
		r.Use(timeout(h.timeout), native, h.authenticate)
		r.Post(batchPath, h.handle(h.ownBatch))
	})

	// Backup and restore: native, with their own timeouts and body limit
	// (see backup_handlers.go).
	r.Group(func(r chi.Router) {
		r.Use(timeout(backupTimeout), native, h.validateParams, h.authenticate, h.consistentReads)
		r.Get("/v1/backup", h.handle(h.backup))
		r.Post(restorePath, h.handle(h.restore))
	})

	// The log routes: streams, without the request timeout (logs.go).
	r.Group(func(r chi.Router) {
		r.Use(native, h.authenticate)
		h.logRoutes(r, putOrPost)
	})

	// Cluster membership: native like the enclave routes.
	r.Group(func(r chi.Router) {
		r.Use(timeout(h.timeout), native, h.validateParams, h.authenticate, h.consistentReads)
		h.clusterRoutes(r, putOrPost)
	})

	if h.pprof {
		h.pprofRoutes(r)
	}
	fast.build(r)
	return r
}

// nativeRoutes registers the routes under /v1/enclaves.
func (h *handler) nativeRoutes(r chi.Router, putOrPost func(chi.Router, string, apiFunc)) {
	r.Get("/v1/enclaves", h.handle(h.listEnclaves))
	r.Get("/v1/enclaves/", h.handle(h.listEnclaves))
	putOrPost(r, "/v1/enclaves/{enclave}", h.createEnclave)
	r.Get("/v1/enclaves/{enclave}", h.handle(h.describeEnclave))
	r.Delete("/v1/enclaves/{enclave}", h.handle(h.deleteEnclave))

	r.Get("/v1/enclaves/{enclave}/keys", h.handle(h.listKeys))
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}", h.createKey)
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/import", h.importKey)
	r.Get("/v1/enclaves/{enclave}/keys/{name}", h.handle(h.describeKey))
	r.Delete("/v1/enclaves/{enclave}/keys/{name}", h.handle(h.deleteKey))
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/rotate", h.rotateKey)
	r.Delete("/v1/enclaves/{enclave}/keys/{name}/versions/{version}", h.handle(h.deleteKeyVersion))
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/generate", h.generateKey)
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/encrypt", h.encrypt)
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/decrypt", h.decrypt)
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/hmac", h.hmac)
	putOrPost(r, "/v1/enclaves/{enclave}/keys/{name}/rewrap", h.rewrap)
	r.Post("/v1/enclaves/{enclave}/batch", h.handle(h.batch))

	r.Get("/v1/enclaves/{enclave}/identities", h.handle(h.listIdentities))
	putOrPost(r, "/v1/enclaves/{enclave}/identities/{identity}", h.createIdentity)
	r.Get("/v1/enclaves/{enclave}/identities/{identity}", h.handle(h.describeIdentity))
	r.Delete("/v1/enclaves/{enclave}/identities/{identity}", h.handle(h.deleteIdentity))

	r.Get("/v1/enclaves/{enclave}/policies", h.handle(h.listPolicies))
	putOrPost(r, "/v1/enclaves/{enclave}/policies/{name}", h.createPolicy)
	r.Get("/v1/enclaves/{enclave}/policies/{name}", h.handle(h.describePolicy))
	r.Delete("/v1/enclaves/{enclave}/policies/{name}", h.handle(h.deletePolicy))
}
