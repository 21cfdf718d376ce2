package server

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
)

// requestCtx is the context of one API request. It is made once, before
// routing, and replaces the chain of contexts and request copies that the
// middleware used to add one by one (request info, chi's routing context,
// the timeout), each of which cost a copy of the http.Request:
//
//   - Value answers the request's info and chi's routing context itself,
//     so chi finds its context and does not add one;
//   - the request timeout is a deadline the context reports, and its timer
//     starts only when something waits on Done or the deadline has passed.
//     Most requests (a data key, an encryption with a cached key) never
//     wait on anything, and so never pay for a timer and a child context of
//     the connection's.
//
// Once Done has been called, or the deadline has passed, or the request is
// over, a real context (context.WithDeadline or WithCancel of the parent)
// stands behind it and answers Done, Err and Value, so that Cause,
// AfterFunc and derived contexts see one consistent state.
type requestCtx struct {
	parent context.Context
	info   requestInfo
	route  *chi.Context // nil: no routing context of our own

	timed atomic.Pointer[timedCtx]

	mu       sync.Mutex
	deadline time.Time // zero: none of our own
	released bool      // the request is over

	// The stall guard's (stall.go). Under the guard's lock: the links
	// of its list and the directions it has cut. Under cutMu: whether
	// the request ended, and the directions whose deadline the handler
	// set itself.
	guard                *stallGuard
	path                 string // the request's, for the guard's log
	stallPrev, stallNext *requestCtx
	stallEpoch           int64
	stallCut             uint8
	cutMu                sync.Mutex
	ended                bool
	ownDeadlines         uint8
	http1                bool
}

// timedCtx is the real context behind a requestCtx once one is needed.
type timedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// routeContexts recycles chi's routing contexts, as chi's own pool does:
// a routing context is valid while its request is served.
var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// newRequest gives r its requestCtx and w the status recorder of the
// request's info; with mux, the routing context chi uses, so that chi does
// not copy the request again. release ends the request's context.
func newRequest(w http.ResponseWriter, r *http.Request, mux chi.Routes, guard *stallGuard) (*requestCtx, http.ResponseWriter, *http.Request) {
	c := &requestCtx{parent: r.Context(), http1: r.ProtoMajor == 1}
	if mux != nil {
		c.route = routeContexts.Get().(*chi.Context)
		c.route.Reset()
		c.route.Routes = mux
	}
	ri := &c.info
	ri.id = newRequestID()
	ri.idHeader[0] = ri.id
	w.Header()["X-Request-Id"] = ri.idHeader[:] // canonical already
	ri.w.ResponseWriter = w
	ri.w.req = c
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 { // HTTP/2: no body
		ri.bodyDone.Store(true)
	}
	if guard != nil {
		c.path = r.URL.Path
		guard.add(c)
	}
	return c, &ri.w, r.WithContext(c)
}

// release ends the request: its context is canceled, and its routing
// context goes back to the pool.
func (c *requestCtx) release() {
	c.endStalls()
	c.mu.Lock()
	c.released = true
	if t := c.timed.Load(); t != nil {
		t.cancel()
	}
	c.mu.Unlock()
	if c.route != nil {
		routeContexts.Put(c.route)
		// c.route stays set: a goroutine that outlives the request and
		// asks for it gets a recycled context, as it would from chi.
	}
}

// newRequestID returns 16 hex digits. Request ids are not secrets and need
// no cryptographic randomness, only few collisions across the nodes.
func newRequestID() string {
	var b [8]byte
	u := rand.Uint64()
	for i := range b {
		b[i] = byte(u >> (8 * i))
	}
	var s [16]byte
	hex.Encode(s[:], b[:])
	return string(s[:])
}

// setDeadline gives the request the deadline d, unless it has one already
// or its context has been waited on: then it reports false and the caller
// derives a context of its own.
func (c *requestCtx) setDeadline(d time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.deadline.IsZero() || c.released || c.timed.Load() != nil {
		return false
	}
	c.deadline = d
	return true
}

// timedLocked returns the real context behind c, making it if needed.
func (c *requestCtx) timedLocked() *timedCtx {
	if t := c.timed.Load(); t != nil {
		return t
	}
	t := &timedCtx{}
	if c.deadline.IsZero() {
		t.ctx, t.cancel = context.WithCancel(c.parent)
	} else {
		t.ctx, t.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	if c.released {
		t.cancel()
	}
	c.timed.Store(t)
	return t
}

func (c *requestCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	pd, ok := c.parent.Deadline()
	if d.IsZero() || (ok && pd.Before(d)) {
		return pd, ok
	}
	return d, true
}

func (c *requestCtx) Done() <-chan struct{} {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline.IsZero() && !c.released {
		return c.parent.Done()
	}
	return c.timedLocked().ctx.Done()
}

func (c *requestCtx) Err() error {
	if t := c.timed.Load(); t != nil {
		return t.ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released {
		err := c.parent.Err()
		if c.deadline.IsZero() {
			return err
		}
		if err == nil && time.Now().Before(c.deadline) {
			return nil
		}
	}
	// Canceled, or past the deadline: from now on the real context
	// answers, so that Done is closed and Cause agrees with Err.
	return c.timedLocked().ctx.Err()
}

func (c *requestCtx) Value(key any) any {
	switch key {
	case requestInfoKey{}:
		return &c.info
	case chi.RouteCtxKey:
		if c.route != nil {
			return c.route
		}
	}
	if t := c.timed.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *requestCtx) String() string { return "minkms request context" }
