package server

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// fastRoutes routes the key operations — generate, encrypt, decrypt, hmac
// and rewrap, the requests a node serves most — by cutting the path
// apart, not by chi's tree search, which with the path values chi sets on
// the request (a map per request) cost 2–3 % of a node's CPU under them.
// It calls exactly the handlers chi would: it takes them from chi's own
// routes, with their groups' middleware, and it fills chi's routing
// context as chi does (path parameters, pattern), so everything after it
// reads the route as before. A path it does not take, or one chi would
// read otherwise (an escaped path: chi routes RawPath), goes on to chi.
// TestFastRoutesAgreeWithChi and FuzzFastRoutes hold it to chi.
//
// Handlers read path parameters with chi.URLParam; the request's
// PathValue is not set on this path.
type fastRoutes struct {
	native map[string]*fastRoute // by operation: /v1/enclaves/{enclave}/keys/{name}/{op}
	kes    map[string]*fastRoute // by operation: /v1/key/{op}/{name}
}

// fastRoute is one pattern's handlers, as chi holds them.
type fastRoute struct {
	pattern   string
	put, post http.Handler
}

// fastOps are the operations fastRoutes routes.
var fastOps = []string{"generate", "encrypt", "decrypt", "hmac", "rewrap"}

// build takes the handlers of the key operations from mux's routes. It is
// called once, after the routes are registered and before any request.
func (f *fastRoutes) build(mux chi.Routes) {
	byPattern := make(map[string]chi.Route)
	for _, rt := range mux.Routes() {
		byPattern[rt.Pattern] = rt
	}
	take := func(pattern string) *fastRoute {
		rt, ok := byPattern[pattern]
		if !ok {
			return nil
		}
		fr := &fastRoute{pattern: pattern, put: rt.Handlers[http.MethodPut], post: rt.Handlers[http.MethodPost]}
		if fr.put == nil && fr.post == nil {
			return nil
		}
		return fr
	}
	f.native, f.kes = make(map[string]*fastRoute), make(map[string]*fastRoute)
	for _, op := range fastOps {
		if fr := take("/v1/enclaves/{enclave}/keys/{name}/" + op); fr != nil {
			f.native[op] = fr
		}
		if fr := take("/v1/key/" + op + "/{name}"); fr != nil {
			f.kes[op] = fr
		}
	}
}

// match returns the route of a PUT or POST of a key operation and its
// path parameters (enclave "" on the KES routes), or nil.
func (f *fastRoutes) match(method, path string) (fr *fastRoute, enclave, name string) {
	if method != http.MethodPut && method != http.MethodPost {
		return nil, "", ""
	}
	var op string
	if rest, ok := strings.CutPrefix(path, "/v1/enclaves/"); ok {
		var keys bool
		enclave, rest, _ = strings.Cut(rest, "/")
		if rest, keys = strings.CutPrefix(rest, "keys/"); !keys || enclave == "" {
			return nil, "", ""
		}
		name, op, _ = strings.Cut(rest, "/")
		fr = f.native[op]
	} else if rest, ok := strings.CutPrefix(path, "/v1/key/"); ok {
		op, name, _ = strings.Cut(rest, "/")
		if strings.IndexByte(name, '/') >= 0 {
			return nil, "", ""
		}
		fr = f.kes[op]
	}
	if fr == nil || name == "" {
		return nil, "", ""
	}
	return fr, enclave, name
}

// middleware is the last of the router's middleware: it serves the key
// operations it matches and passes everything else to chi's routing.
func (f *fastRoutes) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" {
			if fr, enclave, name := f.match(r.Method, r.URL.Path); fr != nil {
				h := fr.put
				if r.Method == http.MethodPost {
					h = fr.post
				}
				rctx := chi.RouteContext(r.Context())
				if h != nil && rctx != nil {
					// As chi's routing leaves them.
					rctx.RouteMethod = r.Method
					if enclave != "" {
						rctx.URLParams.Add("enclave", enclave)
					}
					rctx.URLParams.Add("name", name)
					rctx.RoutePatterns = append(rctx.RoutePatterns, fr.pattern)
					r.Pattern = fr.pattern
					h.ServeHTTP(w, r)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
