package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stallGuard cuts off the requests of clients that stall: it closes the
// body of a request still being read readTimeout after the request
// began, and makes the writes of one still answering writeTimeout after
// it began fail. It stands in for net/http's ReadTimeout and WriteTimeout,
// which the node's http.Server does not set: over HTTP/2 those start two
// timers for every stream (time.AfterFunc, a heap operation each to start
// and to stop them), about 2 % of a node's CPU under load, where most
// requests are answered within a millisecond. The guard instead notes the
// tick a request began at (an atomic load), links it into a list, and
// looks over the list once a tick.
//
// A request is cut between its timeout and its timeout plus one tick (its
// reads only while its body is being read), the way net/http cuts it:
// over HTTP/2, the stream's body reads fail with os.ErrDeadlineExceeded,
// and the stream is reset; over HTTP/1.1, the connection's read or write
// deadline passes, which also ends the request's context, and net/http
// closes the connection afterwards. A handler that sets a deadline of its
// own (http.ResponseController, as the log streams and backups do) takes
// that direction over: the guard leaves it alone.
type stallGuard struct {
	tick       time.Duration
	readTicks  int64 // a request is cut when it has run more ticks than these
	writeTicks int64
	epoch      atomic.Int64 // ticks since the guard began
	cuts       *prometheus.CounterVec
	log        *slog.Logger

	mu   sync.Mutex
	head *requestCtx // requests in flight, linked by stallPrev and stallNext
	n    int

	sweepMu sync.Mutex // one sweep at a time
	due     []stallCut // reused by sweep
}

// stallCut is a request sweep cuts, and which of its directions.
type stallCut struct {
	c    *requestCtx
	what uint8
}

const (
	cutRead  uint8 = 1 << iota // the request's body reads
	cutWrite                   // the answer's writes
)

// stallTick is how often a node's guard looks at its requests.
const stallTick = time.Second

func newStallGuard(read, write, tick time.Duration, log *slog.Logger) *stallGuard {
	ticks := func(d time.Duration) int64 { return int64((d + tick - 1) / tick) }
	return &stallGuard{
		tick: tick, readTicks: ticks(read), writeTicks: ticks(write), log: log,
		cuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minkms_http_stalled_requests_total",
			Help: "Requests cut off because the client sent the body (direction=read) or took the answer (direction=write) too slowly.",
		}, []string{"direction"}),
	}
}

// add notes that c began, at the current tick.
func (g *stallGuard) add(c *requestCtx) {
	c.stallEpoch = g.epoch.Load()
	c.guard = g
	g.mu.Lock()
	c.stallNext = g.head
	if g.head != nil {
		g.head.stallPrev = c
	}
	g.head = c
	g.n++
	g.mu.Unlock()
}

// remove notes that c ended.
func (g *stallGuard) remove(c *requestCtx) {
	g.mu.Lock()
	if c.stallPrev != nil {
		c.stallPrev.stallNext = c.stallNext
	} else {
		g.head = c.stallNext
	}
	if c.stallNext != nil {
		c.stallNext.stallPrev = c.stallPrev
	}
	c.stallPrev, c.stallNext = nil, nil
	g.n--
	g.mu.Unlock()
}

// inFlight returns how many requests the guard watches.
func (g *stallGuard) inFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// run sweeps once a tick until ctx ends.
func (g *stallGuard) run(ctx context.Context) {
	t := time.NewTicker(g.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.sweep()
		}
	}
}

// sweep advances the tick and cuts what has run out of time. The cuts
// happen outside the guard's lock: over HTTP/2, resetting a stream waits
// for the connection's loop.
func (g *stallGuard) sweep() {
	g.sweepMu.Lock()
	defer g.sweepMu.Unlock()
	e := g.epoch.Add(1)
	g.mu.Lock()
	due := g.due[:0]
	for c := g.head; c != nil; c = c.stallNext {
		var what uint8
		age := e - c.stallEpoch
		if age > g.writeTicks {
			what |= cutWrite
		}
		// Once the body has been read there are no reads to cut; over
		// HTTP/1.1 a read deadline would then only cancel the
		// request's context, through net/http's background read.
		if age > g.readTicks && !c.info.bodyDone.Load() {
			what |= cutRead
		}
		if what &^= c.stallCut; what != 0 {
			c.stallCut |= what
			due = append(due, stallCut{c, what})
		}
	}
	g.mu.Unlock()
	for i, d := range due {
		what := d.c.cutStalled(d.what)
		for _, dir := range []struct {
			bit  uint8
			name string
		}{{cutRead, "read"}, {cutWrite, "write"}} {
			if what&dir.bit != 0 {
				g.cuts.WithLabelValues(dir.name).Inc()
				g.log.Debug("Cut off a request whose client stalled", slog.String("path", d.c.path),
					slog.String("direction", dir.name), slog.String("request_id", d.c.info.id))
			}
		}
		due[i] = stallCut{}
	}
	g.due = due[:0]
}

// stallPast is a deadline in the past: setting it cuts at once.
var stallPast = time.Unix(1, 0)

// cutStalled cuts the directions what of c that its handler has not
// taken over, unless c has ended, and returns those it cut.
func (c *requestCtx) cutStalled(what uint8) uint8 {
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	w := c.info.w.ResponseWriter
	if c.ended || w == nil {
		return 0
	}
	what &^= c.ownDeadlines
	rc := http.NewResponseController(w)
	if what&cutRead != 0 && errors.Is(rc.SetReadDeadline(stallPast), http.ErrNotSupported) {
		what &^= cutRead
	}
	if what&cutWrite != 0 && errors.Is(rc.SetWriteDeadline(stallPast), http.ErrNotSupported) {
		what &^= cutWrite
	}
	return what
}

// ownDeadline notes that the handler set a deadline for the directions
// what itself.
func (c *requestCtx) ownDeadline(what uint8) {
	c.cutMu.Lock()
	c.ownDeadlines |= what
	c.cutMu.Unlock()
}

// endStalls ends c for its guard: no cut reaches it from now on. Over
// HTTP/1.1 a write deadline the handler set is cleared, so that it does
// not outlive the request on its connection (net/http resets the read
// deadline for each request itself, but not the write deadline when the
// server has no WriteTimeout).
func (c *requestCtx) endStalls() {
	c.cutMu.Lock()
	c.ended = true
	own := c.ownDeadlines
	c.cutMu.Unlock()
	if own&cutWrite != 0 && c.http1 {
		_ = http.NewResponseController(c.info.w.ResponseWriter).SetWriteDeadline(time.Time{})
	}
	if c.guard != nil {
		c.guard.remove(c)
	}
}
