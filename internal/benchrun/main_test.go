package main

import "testing"

func TestMedianAndRatio(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {nil, 0}} {
		if got := medianOf(tc.v); got != tc.want {
			t.Errorf("medianOf(%v) = %v, want %v", tc.v, got, tc.want)
		}
	}
	if got := ratio([]float64{1.2, 1.1, 1.15}); got != "1.15× (1.10–1.20)" {
		t.Errorf("ratio = %q", got)
	}
	if got := ratio([]float64{1.234}); got != "1.23×" {
		t.Errorf("ratio of one = %q", got)
	}
	if got := median([]result{{OpsPerSec: 5}, {OpsPerSec: 1}, {OpsPerSec: 3}}, func(r result) float64 { return r.OpsPerSec }); got != 3 {
		t.Errorf("median = %v", got)
	}
}
