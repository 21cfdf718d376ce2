package server

import (
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
)

// pprofRoutes serves Go's runtime profiles to cluster admins, when
// debug.pprof is on: GET /debug/pprof/ (the index), the named profiles
// (heap, goroutine, allocs, block, mutex, threadcreate), cmdline, profile
// (CPU, ?seconds=N), symbol and trace. Without the setting the routes do
// not exist (404).
func (h *handler) pprofRoutes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(h.authenticate, h.clusterAdminsOnly)
		r.Get("/debug/pprof/cmdline", pprof.Cmdline)
		r.Get("/debug/pprof/profile", pprof.Profile)
		r.Get("/debug/pprof/symbol", pprof.Symbol)
		r.Get("/debug/pprof/trace", pprof.Trace)
		r.Get("/debug/pprof/*", pprof.Index) // the index and the named profiles
	})
}

// clusterAdminsOnly refuses everyone but the cluster admins (403).
func (h *handler) clusterAdminsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := requireClusterAdmin(r); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
