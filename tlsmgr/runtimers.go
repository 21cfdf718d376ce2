package tlsmgr

import "time"

// runTimers are the timers of Run: the reload interval, the debounce of
// file events and the retry of watches that could not be added. A timer
// that is not armed has a nil channel, so its case in Run's select never
// fires.
type runTimers struct {
	clock    Clock
	debounce time.Duration // Config.WatchDebounce

	interval     oneShot
	settle       oneShot   // fires once file events have been quiet for debounce
	retryWatches oneShot   // fires to add the watches that are missing
	burstStart   time.Time // the first event of the current burst
}

// Bounds of Run's timers, in debounce periods.
const (
	// maxDebounceBursts bounds how long a burst of events may postpone a
	// reload.
	maxDebounceBursts = 10
	// retryDebounces is the period of the retry of missing watches.
	retryDebounces = 4
)

func newRunTimers(clock Clock, debounce, interval time.Duration) *runTimers {
	t := &runTimers{clock: clock, debounce: debounce}
	t.interval.arm(clock, interval)
	return t
}

// kick (re)starts the debounce: a reload runs once events have been quiet
// for the debounce period, but no later than maxDebounceBursts periods
// after the first event of the burst, so that a writer that never pauses
// cannot postpone the reload forever.
func (t *runTimers) kick() {
	now := t.clock.Now()
	if !t.settle.armed() {
		t.burstStart = now
	} else if now.Sub(t.burstStart) >= maxDebounceBursts*t.debounce {
		return
	}
	t.settle.arm(t.clock, t.debounce)
}

// retryUnless arms the retry of missing watches, unless every directory is
// watched or the retry is armed already.
func (t *runTimers) retryUnless(complete bool) {
	if !complete && !t.retryWatches.armed() {
		t.retryWatches.arm(t.clock, retryDebounces*t.debounce)
	}
}

func (t *runTimers) stop() {
	t.interval.stop()
	t.settle.stop()
	t.retryWatches.stop()
}

// oneShot is a Timer that may be unarmed.
type oneShot struct{ t Timer }

// arm (re)starts the timer to fire after d.
func (o *oneShot) arm(c Clock, d time.Duration) {
	o.stop()
	o.t = c.NewTimer(d)
}

// C returns the channel the armed timer fires on, nil when it is unarmed.
func (o *oneShot) C() <-chan time.Time {
	if o.t == nil {
		return nil
	}
	return o.t.C()
}

// fired unarms the timer after its value was received.
func (o *oneShot) fired() { o.t = nil }

func (o *oneShot) armed() bool { return o.t != nil }

func (o *oneShot) stop() {
	if o.t != nil {
		o.t.Stop()
		o.t = nil
	}
}
