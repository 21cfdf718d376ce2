package testpki

import (
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
)

// Clock is a fake tlsmgr.Clock: time moves only when Advance is called.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

var _ tlsmgr.Clock = (*Clock)(nil)

// NewClock returns a fake clock at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now implements tlsmgr.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements tlsmgr.Clock.
func (c *Clock) NewTimer(d time.Duration) tlsmgr.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward by d and fires the timers due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var pending []*fakeTimer
	for _, t := range c.timers {
		if t.at.After(c.now) {
			pending = append(pending, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = pending
}

// Timers returns the number of pending timers.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitTimers waits until at least n timers are pending, failing tb after
// a deadline.
func (c *Clock) WaitTimers(tb testing.TB, n int) {
	tb.Helper()
	Eventually(tb, func() bool { return c.Timers() >= n }, "%d pending timers", n)
}

type fakeTimer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Eventually polls cond until it holds, failing tb with the description
// after 10 seconds.
func Eventually(tb testing.TB, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
