package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

type ctxTestKey struct{}

// newTestRequestCtx returns a requestCtx over a cancelable parent that
// holds a value, as the connection's context does.
func newTestRequestCtx(t *testing.T) (*requestCtx, context.CancelFunc) {
	t.Helper()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxTestKey{}, "conn"))
	t.Cleanup(cancel)
	r := httptest.NewRequestWithContext(parent, http.MethodGet, "/", nil)
	c, _, r2 := newRequest(httptest.NewRecorder(), r, chi.NewRouter(), nil)
	if r2.Context() != c {
		t.Fatal("the request does not carry its context")
	}
	t.Cleanup(c.release)
	return c, cancel
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// wait waits for ch to close, failing after a generous deadline.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not done after 10s", what)
	}
}

// TestRequestCtxValues: the request's info and chi's routing context come
// from the context itself; every other value from the connection's.
func TestRequestCtxValues(t *testing.T) {
	c, _ := newTestRequestCtx(t)
	if info(c) != &c.info || c.info.id == "" || len(c.info.id) != 16 {
		t.Errorf("request info %+v, id %q", info(c), c.info.id)
	}
	if rctx := chi.RouteContext(c); rctx == nil || rctx != c.route {
		t.Error("chi's routing context is not the request's")
	}
	if got := c.Value(ctxTestKey{}); got != "conn" {
		t.Errorf("the parent's value = %v", got)
	}
	// Still so once a real context stands behind it.
	c.setDeadline(time.Now().Add(time.Hour))
	c.Done()
	if got := c.Value(ctxTestKey{}); got != "conn" || info(c) != &c.info {
		t.Errorf("after Done: the parent's value = %v, info %p", got, info(c))
	}
}

// TestRequestCtxDeadline: a deadline nobody waits on starts no timer, and
// one that passes cancels the context, its Done, its Cause and the
// contexts derived from it, whenever they were derived.
func TestRequestCtxDeadline(t *testing.T) {
	c, _ := newTestRequestCtx(t)
	d := time.Now().Add(50 * time.Millisecond)
	if !c.setDeadline(d) {
		t.Fatal("setDeadline refused a fresh context")
	}
	if c.setDeadline(time.Now().Add(time.Hour)) {
		t.Error("setDeadline replaced a deadline")
	}
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline() = %v, %v; want %v", got, ok, d)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() before the deadline = %v", err)
	}
	if c.timed.Load() != nil {
		t.Fatal("a timer was started though nothing waited")
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	wait(t, c.Done(), "the request's context")
	wait(t, child.Done(), "a child")
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("Err() = %v, Cause = %v; want deadline exceeded", c.Err(), context.Cause(c))
	}
	if !errors.Is(child.Err(), context.Canceled) && !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("the child's Err() = %v", child.Err())
	}
}

// TestRequestCtxDeadlinePassedUnwatched: a deadline that passed while
// nothing waited is reported by Err and Cause, and Done is closed.
func TestRequestCtxDeadlinePassedUnwatched(t *testing.T) {
	c, _ := newTestRequestCtx(t)
	c.setDeadline(time.Now().Add(-time.Millisecond))
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v", c.Err())
	}
	if !closed(c.Done()) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("Done closed %v, Cause %v", closed(c.Done()), context.Cause(c))
	}
}

// TestRequestCtxParentCanceled: the connection's end ends the request,
// with or without a deadline, waited on or not.
func TestRequestCtxParentCanceled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline bool
		waitBy   bool
	}{{"NoDeadline", false, false}, {"Deadline", true, false}, {"DeadlineWaited", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := newTestRequestCtx(t)
			if tc.deadline {
				c.setDeadline(time.Now().Add(time.Hour))
			}
			var done <-chan struct{}
			if tc.waitBy {
				done = c.Done()
			}
			cancel()
			if done != nil {
				wait(t, done, "Done taken before the cancel")
			}
			wait(t, c.Done(), "Done")
			if !errors.Is(c.Err(), context.Canceled) {
				t.Errorf("Err() = %v", c.Err())
			}
		})
	}
}

// TestRequestCtxRelease: once the request is over its context is canceled,
// as context.WithTimeout's cancel did, including contexts derived before.
func TestRequestCtxRelease(t *testing.T) {
	c, _ := newTestRequestCtx(t)
	c.setDeadline(time.Now().Add(time.Hour))
	child, cancel := context.WithCancel(c)
	defer cancel()
	c.release()
	wait(t, child.Done(), "a child")
	wait(t, c.Done(), "Done")
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(context.Cause(c), context.Canceled) {
		t.Errorf("Err() = %v, Cause = %v", c.Err(), context.Cause(c))
	}
	if c.setDeadline(time.Now().Add(time.Hour)) {
		t.Error("setDeadline took a deadline after the request ended")
	}

	// Without a deadline, and never waited on.
	c2, _ := newTestRequestCtx(t)
	c2.release()
	if !errors.Is(c2.Err(), context.Canceled) || !closed(c2.Done()) {
		t.Errorf("after release without a deadline: Err() = %v", c2.Err())
	}
}

// TestTimeoutMiddleware: a route's timeout reaches the handler's context
// as its deadline, on the request's own context when it has one and on a
// derived one when it has been waited on already.
func TestTimeoutMiddleware(t *testing.T) {
	var got time.Time
	var same bool
	h := timeout(time.Hour)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = r.Context().Deadline()
		_, same = r.Context().(*requestCtx)
	}))
	start := time.Now()
	withRequestInfo(h).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if got.Before(start.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) || !same {
		t.Errorf("deadline %v (start %v), on the request's context: %v", got, start, same)
	}

	// A second timeout, inside a first: a context of its own, whose
	// deadline is the earlier.
	start = time.Now()
	withRequestInfo(timeout(time.Minute)(h)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if got.Before(start.Add(time.Minute)) || got.After(time.Now().Add(time.Minute)) || same {
		t.Errorf("deadline %v (start %v), on the request's context: %v", got, start, same)
	}
}
