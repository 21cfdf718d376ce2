package journal

import (
	"sync"
	"time"
)

// entry is one item of a Ring with what the ring needs to know about it.
type entry[T any] struct {
	seq  uint64
	time time.Time
	size int
	v    T
}

// Ring holds the most recent items appended to it, at most maxItems of
// them and about maxBytes (as the sizes given to Append add up). A Ring is safe for
// concurrent use.
type Ring[T any] struct {
	mu       sync.Mutex
	items    []entry[T] // circular: start is the oldest, n items in use
	start, n int
	bytes    int
	maxBytes int
	seq      uint64        // the last sequence number appended
	evicted  uint64        // the sequence number of the last item evicted
	changed  chan struct{} // closed and cleared on Append; nil if nobody waits
}

// NewRing returns a ring of at most maxItems items and maxBytes bytes
// (none if maxBytes <= 0).
func NewRing[T any](maxItems, maxBytes int) *Ring[T] {
	return &Ring[T]{items: make([]entry[T], max(maxItems, 1)), maxBytes: maxBytes}
}

// Append adds v with its sequence number seq, which must be above every
// one appended before, evicting the oldest items to stay within the
// bounds.
func (r *Ring[T]) Append(seq uint64, t time.Time, size int, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked(seq, t, size, v)
}

func (r *Ring[T]) appendLocked(seq uint64, t time.Time, size int, v T) {
	for r.n > 0 && (r.n == len(r.items) || r.maxBytes > 0 && r.bytes+size > r.maxBytes) {
		old := &r.items[r.start]
		r.bytes -= old.size
		r.evicted = old.seq
		*old = entry[T]{}
		r.start = (r.start + 1) % len(r.items)
		r.n--
	}
	r.seq = seq
	r.items[(r.start+r.n)%len(r.items)] = entry[T]{seq: seq, time: t, size: size, v: v}
	r.n++
	r.bytes += size
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Changed returns a channel that is closed at the next Append.
func (r *Ring[T]) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// Page is what Read returns.
type Page[T any] struct {
	Items  []T
	Oldest uint64 // the sequence number of the oldest item held; 0 if none
	Last   uint64 // the last sequence number handed out
	// More is set when limit cut a forward read short: items after the
	// last one returned match too.
	More bool
	// Evicted is the sequence number of the newest item evicted: a reader
	// that read up to a lower one lost at most Evicted minus that many.
	Evicted uint64
	// Next is the sequence number to read after next time (the last item
	// looked at), so that a reader that filters does not look at the same
	// items again.
	Next uint64
}

// Read returns the items after sequence number after (0: from the
// oldest) for which match (nil: all) is true. With tail, it returns the
// last limit of them; otherwise the first limit (limit <= 0: all).
func (r *Ring[T]) Read(after uint64, match func(T) bool, limit int, tail bool) Page[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Page[T]{Last: r.seq, Next: after, Evicted: r.evicted}
	if r.n > 0 {
		p.Oldest = r.items[r.start].seq
	}
	for i := 0; i < r.n; i++ {
		e := &r.items[(r.start+i)%len(r.items)]
		if e.seq <= after {
			continue
		}
		if !tail && limit > 0 && len(p.Items) == limit {
			p.More = true
			return p
		}
		p.Next = e.seq
		if match != nil && !match(e.v) {
			continue
		}
		p.Items = append(p.Items, e.v)
	}
	if tail && limit > 0 && len(p.Items) > limit {
		p.Items = append([]T(nil), p.Items[len(p.Items)-limit:]...)
	}
	return p
}

// Last returns the last sequence number handed out.
func (r *Ring[T]) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Oldest returns the sequence number of the oldest item held, 0 if none.
func (r *Ring[T]) Oldest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return 0
	}
	return r.items[r.start].seq
}
