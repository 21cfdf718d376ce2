package tlsmgr

import (
	"testing"
	"time"
)

func TestFormatLeftLong(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{36 * time.Hour, "36h"}, // the warning's words, unchanged
		{71 * time.Hour, "71h"},
		{72 * time.Hour, "3d"},
		{90*24*time.Hour - time.Hour, "89d 23h"},
	} {
		if got := formatLeftLong(tc.in); got != tc.want {
			t.Errorf("formatLeftLong(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
