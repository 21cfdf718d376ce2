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
		{36*time.Hour - time.Second, "36h"},
		{36*time.Hour + 29*time.Minute, "36h"},
		{36*time.Hour + 31*time.Minute, "37h"},
		{71*time.Hour + 31*time.Minute, "3d"},
		{90*24*time.Hour - time.Second, "90d"},
		{30 * time.Second, "30s"},
		{59*time.Second + 600*time.Millisecond, "1m"},
		{71 * time.Hour, "71h"},
		{72 * time.Hour, "3d"},
		{90*24*time.Hour - time.Hour, "89d 23h"},
	} {
		if got := formatLeftLong(tc.in); got != tc.want {
			t.Errorf("formatLeftLong(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
