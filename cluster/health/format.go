package health

import (
	"fmt"
	"strings"
	"time"
)

// timeLayout is the layout of every date in a finding's message, in UTC,
// the layout of tlsmgr's certificate warnings.
const timeLayout = "2006-01-02 15:04:05"

// formatTime is t in UTC in timeLayout: "2026-12-01 04:00:00".
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// FormatLeft formats a remaining duration the way the certificate warnings
// do, as in "expires in 36h": rounded to the nearest hour ("36h"), below an
// hour to the nearest minute ("45m"), below a minute to the nearest second
// ("30s"). Rounding, not truncating: a certificate issued for 36 hours
// reads "36h" a second after it is loaded, not "35h". A negative duration
// is formatted by its magnitude with a leading "-" ("-2h").
//
// The rule is tlsmgr's (its formatLeft); it is repeated here so that
// health stays a leaf package, and the two must not drift apart.
func FormatLeft(d time.Duration) string {
	if d < 0 {
		return "-" + FormatLeft(-d)
	}
	switch {
	case d.Round(time.Minute) >= time.Hour:
		return fmt.Sprintf("%dh", d.Round(time.Hour)/time.Hour)
	case d.Round(time.Second) >= time.Minute:
		return fmt.Sprintf("%dm", d.Round(time.Minute)/time.Minute)
	default:
		return fmt.Sprintf("%ds", d.Round(time.Second)/time.Second)
	}
}

// nodeList is "n2, n3".
func nodeList(ids []string) string { return strings.Join(ids, ", ") }

// shortFingerprint is the first 16 hexadecimal digits of a fingerprint,
// enough to tell two certificates apart in a message.
func shortFingerprint(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
