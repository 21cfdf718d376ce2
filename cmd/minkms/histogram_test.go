package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 999_999, 1 << 40, 1<<62 + 12345} {
		b := bucketOf(v)
		if up := bucketUpper(b); v > up {
			t.Errorf("%d: bucket %d ends at %d, below the value", v, b, up)
		}
		if b > 0 && v <= bucketUpper(b-1) {
			t.Errorf("%d: belongs in bucket %d, not %d", v, b-1, b)
		}
		if lo := bucketUpper(b-1) + 1; b > 0 && float64(bucketUpper(b)-lo) > float64(lo)/histSub+1 {
			t.Errorf("%d: bucket %d [%d, %d] is wider than 1/%d of its value", v, b, lo, bucketUpper(b), histSub)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 100_000)
	for i := range samples {
		// Log-normal-ish latencies from 50µs to about 1s.
		samples[i] = time.Duration(50_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*20))
		h.record(samples[i])
	}
	slices.Sort(samples)
	if h.count() != uint64(len(samples)) {
		t.Fatalf("count %d, want %d", h.count(), len(samples))
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := samples[min(int(q*float64(len(samples))), len(samples)-1)]
		got := h.quantile(q)
		if got < want || float64(got-want) > float64(want)/histSub {
			t.Errorf("p%v = %v, want %v within +1/%d", q*100, got, want, histSub)
		}
	}
	if got := time.Duration(h.max.Load()); got != samples[len(samples)-1] {
		t.Errorf("max %v, want %v", got, samples[len(samples)-1])
	}
	var merged histogram
	merged.merge(&h)
	merged.merge(&h)
	if merged.count() != 2*h.count() || merged.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merge: count %d p50 %v, want %d %v", merged.count(), merged.quantile(0.5), 2*h.count(), h.quantile(0.5))
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("an empty histogram has a p99")
	}
}
