package tlsmgr_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// wantCanceled checks that every part of res failed for ReasonCanceled.
func wantCanceled(t *testing.T, res tlsmgr.ReloadResult) {
	t.Helper()
	type part struct {
		o      tlsmgr.Outcome
		r      tlsmgr.Reason
		errMsg string
	}
	parts := []part{{res.CA.Outcome, res.CA.Reason, res.CA.Error}}
	for _, p := range res.Pairs {
		parts = append(parts, part{p.Outcome, p.Reason, p.Error})
	}
	if len(res.Pairs) == 0 || res.Rotated || !res.Failed() {
		t.Errorf("result %+v, want every part failed and nothing rotated", res)
	}
	for _, p := range parts {
		if p.o != tlsmgr.Failed || p.r != tlsmgr.ReasonCanceled || !strings.Contains(p.errMsg, "context canceled") {
			t.Errorf("result %+v, want %s: %s with the context's error", res, tlsmgr.Failed, tlsmgr.ReasonCanceled)
		}
	}
}

// TestReloadCanceled: a reload whose context has ended swaps nothing, tells
// no subscriber and does not count as a failure of the certificates.
func TestReloadCanceled(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t)
	before := servedSerial(m)
	rotations, unsubscribe := m.Subscribe()
	defer unsubscribe()
	next := f.issue(t, testpki.Options{})
	f.writePair(t, next)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantCanceled(t, m.Reload(ctx))
	if got := servedSerial(m); got != before {
		t.Errorf("served %s after a canceled reload, want the old %s", got, before)
	}
	select {
	case <-rotations:
		t.Error("subscribers were told of a rotation")
	default:
	}
	if st := m.Status(); st.Pairs[0].ConsecutiveFailures != 0 || st.Pairs[0].LastError != "" || st.CA.LastError != "" {
		t.Errorf("a canceled reload was recorded as a failure: %+v", st)
	}
	if n := m.Metrics().Reloads[tlsmgr.Failed]; n != 0 {
		t.Errorf("%d failed reloads counted, want 0", n)
	}

	if res := m.Reload(context.Background()); res.Pairs[0].Outcome != tlsmgr.Reloaded {
		t.Fatalf("the next reload: %+v, want the new pair reloaded", res)
	}
	if got := servedSerial(m); got != serialOf(next.Cert) {
		t.Errorf("served %s, want %s", got, serialOf(next.Cert))
	}
}

// TestReloadCanceledWhileWaiting: a reload that waits for another one to
// finish gives up as soon as its context ends.
func TestReloadCanceledWhileWaiting(t *testing.T) {
	f := mustFixture(t)
	gate := &gateHandler{Handler: f.logs, entered: make(chan struct{}), release: make(chan struct{})}
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.Logger = slog.New(gate) })
	f.writePair(t, f.issue(t, testpki.Options{}))

	first := make(chan tlsmgr.ReloadResult, 1)
	go func() { first <- m.Reload(context.Background()) }()
	select {
	case <-gate.entered: // the first reload holds its turn, blocked in its log
	case <-time.After(10 * time.Second):
		t.Fatal("the first reload did not log its rotation")
	}
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan tlsmgr.ReloadResult, 1)
	go func() { second <- m.Reload(ctx) }()
	cancel()
	select {
	case res := <-second:
		wantCanceled(t, res)
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled Reload kept waiting for the running one")
	}

	close(gate.release)
	released = true
	if res := <-first; res.Pairs[0].Outcome != tlsmgr.Reloaded {
		t.Errorf("the first reload: %+v, want the new pair reloaded", res)
	}
}

// gateHandler blocks the first "Reloaded server certificate" record until
// release is closed, so a test can hold a reload in the middle.
type gateHandler struct {
	slog.Handler
	entered, release chan struct{}
	done             bool
}

func (g *gateHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Reloaded server certificate") && !g.done {
		g.done = true // only the reload's own goroutine logs this
		close(g.entered)
		<-g.release
	}
	return g.Handler.Handle(ctx, r)
}
