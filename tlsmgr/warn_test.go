package tlsmgr_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// TestExpiryWarnings pins the exact words of the expiry warnings, at start
// and at every check, with a fake clock.
func TestExpiryWarnings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		left    time.Duration // validity left at start
		advance time.Duration // then the clock moves and a check runs
		want    string        // a format with the cert path; "" means no warning
	}{
		// The hours are rounded to the nearest: 36h less a second is "36h",
		// the words of the documentation's example, not "35h".
		{"36hLessASecondAtStart", 36*time.Hour - time.Second, 0, "Certificate %[1]s expires in 36h"},
		{"47hAtStart", 47 * time.Hour, 0, "Certificate %[1]s expires in 47h"},
		{"47h29mAtStart", 47*time.Hour + 29*time.Minute, 0, "Certificate %[1]s expires in 47h"},
		{"47h31mAtStart", 47*time.Hour + 31*time.Minute, 0, "Certificate %[1]s expires in 48h"},
		// The boundary: warn_before (48h) still warns, a second more does not.
		{"48hAtStart", 48 * time.Hour, 0, "Certificate %[1]s expires in 48h"},
		{"48hAndASecondAtStart", 48*time.Hour + time.Second, 0, ""},
		{"49hAtStart", 49 * time.Hour, 0, ""},
		{"47hAtCheck", 100 * time.Hour, 53 * time.Hour, "Certificate %[1]s expires in 47h"},
		{"45mAtCheck", 100 * time.Hour, 100*time.Hour - 45*time.Minute, "Certificate %[1]s expires in 45m"},
		{"45mLessASecondAtCheck", 100 * time.Hour, 100*time.Hour - 45*time.Minute + time.Second, "Certificate %[1]s expires in 45m"},
		{"59m45sAtCheck", 100 * time.Hour, 100*time.Hour - 59*time.Minute - 45*time.Second, "Certificate %[1]s expires in 1h"},
		{"ExpiredAtCheck", 100 * time.Hour, 101 * time.Hour, "Certificate %s expired on %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			end := f.now.Add(tc.left)
			f.writePair(t, f.issue(t, testpki.Options{NotAfter: end}))
			m := f.mustManager(t)
			if tc.advance > 0 {
				f.logs.reset()
				f.clock.Advance(tc.advance)
				m.Reload(context.Background())
			}
			want := fmt.Sprintf(tc.want, f.pair.Cert, end.UTC().Format("2006-01-02 15:04:05"))
			got := f.logs.warnings()
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("warnings %q, want none", got)
				}
				return
			}
			if !slices.Contains(got, want) {
				t.Fatalf("warnings %q lack %q", got, want)
			}
			rec, _ := f.logs.findMessage(want)
			wantReason := "expires_soon"
			if tc.advance >= tc.left {
				wantReason = string(tlsmgr.ReasonExpired)
			}
			if rec.attrs["cert"] != f.pair.Cert || rec.attrs["expiry"] == "" || rec.attrs["reason"] != wantReason {
				t.Errorf("warning fields %v, want cert, expiry and reason %s", rec.attrs, wantReason)
			}
		})
	}
}

// TestExpiredOnWording pins the example of the documentation.
func TestExpiredOnWording(t *testing.T) {
	f := mustFixture(t)
	end := time.Date(2025, 1, 15, 14, 30, 0, 0, time.UTC)
	f.now = end.Add(-24 * time.Hour)
	f.clock = testpki.NewClock(f.now)
	f.ca = testpki.MustCA(t, "old root", f.now)
	mustWriteFile(t, f.caPEM, f.ca.PEM)
	f.writePair(t, f.issue(t, testpki.Options{NotAfter: end}))
	m := f.mustManager(t)
	f.clock.Advance(48 * time.Hour)
	m.Reload(context.Background())
	want := "Certificate " + f.pair.Cert + " expired on 2025-01-15 14:30:00"
	if !slices.Contains(f.logs.warnings(), want) {
		t.Fatalf("warnings %q lack %q", f.logs.warnings(), want)
	}
}
