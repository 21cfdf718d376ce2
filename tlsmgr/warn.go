package tlsmgr

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The log lines of this file are the ones operators search for; their words
// are part of the contract (see the package documentation).

// reasonExpiresSoon is the reason field of the "expires in" warning; the
// "expired on" warning carries ReasonExpired.
const reasonExpiresSoon = "expires_soon"

// warnExpiry logs, for every served pair, that its certificate expired or
// expires within Config.WarnBefore, with the path, the expiry and the
// reason as fields.
func (m *Manager) warnExpiry(served []*candidate, now time.Time) {
	for _, c := range served {
		left := c.expiry.Sub(now)
		switch {
		case left <= 0:
			m.log.Warn(expiredMessage(c.pair.Cert, c.expiry),
				slog.String("cert", c.pair.Cert), slog.Time("expiry", c.expiry),
				slog.String("reason", string(ReasonExpired)))
		case left <= m.cfg.WarnBefore:
			m.log.Warn(expiresMessage(c.pair.Cert, left),
				slog.String("cert", c.pair.Cert), slog.Time("expiry", c.expiry),
				slog.String("reason", reasonExpiresSoon))
		}
	}
}

// expiresMessage is "Certificate /etc/minkms/public.crt expires in 36h".
func expiresMessage(path string, left time.Duration) string {
	return fmt.Sprintf("Certificate %s expires in %s", path, formatLeft(left))
}

// expiredMessage is "Certificate /etc/minkms/public.crt expired on 2025-01-15 14:30:00".
func expiredMessage(path string, at time.Time) string {
	return fmt.Sprintf("Certificate %s expired on %s", path, formatTime(at))
}

// formatLeft formats a remaining duration rounded to the nearest hour
// ("36h"), below an hour to the nearest minute ("45m") and below a minute to
// the nearest second ("30s"). Rounding, not truncating: a certificate issued
// for 36 hours reads "36h" a second after it is loaded, not "35h".
func formatLeft(d time.Duration) string {
	switch {
	case d.Round(time.Minute) >= time.Hour:
		return fmt.Sprintf("%dh", d.Round(time.Hour)/time.Hour)
	case d.Round(time.Second) >= time.Minute:
		return fmt.Sprintf("%dm", d.Round(time.Minute)/time.Minute)
	default:
		return fmt.Sprintf("%ds", d.Round(time.Second)/time.Second)
	}
}

// logPairFailure logs why a pair was refused.
func (m *Manager) logPairFailure(p Pair, err error) {
	attrs := []any{slog.String("cert", p.Cert), slog.String("key", p.Key)}
	var v *ValidationError
	if !errors.As(err, &v) {
		m.log.Warn(fmt.Sprintf("Failed to load server certificate %s: %v", p.Cert, err), attrs...)
		return
	}
	attrs = append(attrs, slog.String("reason", string(v.Reason)), slog.String("error", v.Err.Error()))
	if !v.Time.IsZero() {
		attrs = append(attrs, slog.Time("expiry", v.Time))
	}
	var msg string
	switch v.Reason {
	case ReasonCertUnreadable:
		msg = fmt.Sprintf("Failed to read server certificate: %v", v.Err)
	case ReasonKeyUnreadable:
		msg = fmt.Sprintf("Failed to read server private key: %v", v.Err)
	case ReasonExpired:
		if !v.Time.IsZero() {
			msg = expiredMessage(p.Cert, v.Time)
			break
		}
		fallthrough
	default:
		msg = fmt.Sprintf("Rejected server certificate %s: %v", p.Cert, v.Err)
	}
	m.log.Warn(msg, attrs...)
}

// logCAFailure logs why the CA bundle was refused.
func (m *Manager) logCAFailure(err error) {
	attrs := []any{slog.String("ca", m.cfg.CA)}
	var v *ValidationError
	if !errors.As(err, &v) {
		m.log.Warn(fmt.Sprintf("Failed to load CA certificates %s: %v", m.cfg.CA, err), attrs...)
		return
	}
	attrs = append(attrs, slog.String("file", v.File), slog.String("reason", string(v.Reason)), slog.String("error", v.Err.Error()))
	if v.Reason == ReasonCAUnreadable {
		m.log.Warn(fmt.Sprintf("Failed to read CA certificates: %v", v.Err), attrs...)
		return
	}
	m.log.Warn(fmt.Sprintf("Rejected CA certificates %s: %v", v.File, v.Err), attrs...)
}

// formatLeft's words are promised in the warning; for the long spans that
// `minkms cert check` shows, days read better: "89d 23h" rather than "2159h".
func formatLeftLong(d time.Duration) string {
	r := d.Round(time.Hour)
	if r < 72*time.Hour {
		return formatLeft(d)
	}
	days, hours := int(r/(24*time.Hour)), int(r%(24*time.Hour)/time.Hour)
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, hours)
}
