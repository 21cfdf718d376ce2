package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts latencies in logarithmic buckets: the power of two of a
// duration in nanoseconds, split into histSub linear sub-buckets, so that a
// quantile is off by at most 1/histSub (6.25 %) of its value. The counters
// are atomic: one goroutine records while another reads a snapshot for the
// progress line. The maximum is exact.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64
	n      atomic.Uint64
}

const (
	histSubBits = 4
	histSub     = 1 << histSubBits
	histBuckets = 64 * histSub
)

// bucketOf returns the bucket of v nanoseconds.
func bucketOf(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v) // exact below histSub ns
	}
	e := bits.Len64(uint64(v)) - 1 // v >= 2^e
	sub := int(uint64(v)>>(e-histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + sub
}

// bucketUpper returns the largest value of bucket b, in nanoseconds.
func bucketUpper(b int) int64 {
	if b < histSub {
		return int64(b)
	}
	e := b/histSub + histSubBits - 1
	sub := int64(b % histSub)
	lo := int64(1)<<e + sub<<(e-histSubBits)
	return lo + int64(1)<<(e-histSubBits) - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// merge adds the counts of o to h.
func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// count returns the number of recorded values.
func (h *histogram) count() uint64 { return h.n.Load() }

// quantile returns the value below or at which a fraction q of the recorded
// values lie (the upper end of its bucket, never above the maximum), or 0 if
// there is none.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	var counts [histBuckets]uint64
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank >= total {
		rank = total - 1
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen > rank {
			return min(time.Duration(bucketUpper(i)), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}
