package journal

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/minkms/minkms/api"
)

// Filter selects records. The zero Filter selects every record.
type Filter struct {
	// Level is the lowest level of the log records selected ("" for all);
	// it does not apply to the audit trail.
	Level string `json:"level,omitempty"`
	// Since and Until bound the records' time, both inclusive; zero for
	// no bound.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Message selects the log records whose message contains it, and the
	// audit records whose action, object, path or identity does, in any
	// case.
	Message string `json:"message,omitempty"`
}

// compiled is a Filter ready to match.
type compiled struct {
	Filter
	level    slog.Level
	hasLevel bool
	message  string
}

func (f Filter) compile() (compiled, error) {
	c := compiled{Filter: f, message: strings.ToLower(f.Message)}
	if f.Level != "" {
		l, err := ParseLevel(f.Level)
		if err != nil {
			return c, err
		}
		c.level, c.hasLevel = l, true
	}
	return c, nil
}

// Check returns an error if f cannot be used: an unknown level, or Until
// before Since.
func (f Filter) Check() error {
	if _, err := f.compile(); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return fmt.Errorf("until (%s) is before since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return nil
}

func (c *compiled) inTime(t time.Time) bool {
	return (c.Since.IsZero() || !t.Before(c.Since)) && (c.Until.IsZero() || !t.After(c.Until))
}

func (c *compiled) contains(s string) bool {
	return c.message == "" || strings.Contains(strings.ToLower(s), c.message)
}

// MatchLog reports whether f selects the log record r.
func (f Filter) MatchLog(r api.LogRecord) bool {
	c, err := f.compile()
	return err == nil && c.matchLog(r)
}

func (c *compiled) matchLog(r api.LogRecord) bool {
	if c.hasLevel {
		var l slog.Level
		if l.UnmarshalText([]byte(r.Level)) == nil && l < c.level {
			return false
		}
	}
	return c.inTime(r.Time) && c.contains(r.Message)
}

// MatchAudit reports whether f selects the audit record r.
func (f Filter) MatchAudit(r api.AuditRecord) bool {
	c, err := f.compile()
	return err == nil && c.matchAudit(r)
}

func (c *compiled) matchAudit(r api.AuditRecord) bool {
	if !c.inTime(r.Time) {
		return false
	}
	return c.message == "" || c.contains(r.Action) || c.contains(r.Object) || c.contains(r.Path) || c.contains(r.Identity)
}

// ReadLogs returns the log records after sequence number after that f
// selects: the last limit of them with tail, else the first limit (all
// if limit <= 0). A Filter at WARN or above reads the ring of WARN and
// above, which keeps them longer; below, the records that the ring of all
// records has evicted and the WARN ring still holds come first.
func (j *Journal) ReadLogs(after uint64, f Filter, limit int, tail bool) (Page[api.LogRecord], error) {
	c, err := f.compile()
	if err != nil {
		return Page[api.LogRecord]{}, err
	}
	if c.hasLevel && c.level >= slog.LevelWarn {
		return j.warn.Read(after, c.matchLog, limit, tail), nil
	}
	oldest := j.all.Oldest()
	older := j.warn.Read(after, func(r api.LogRecord) bool { return r.Seq < oldest && c.matchLog(r) }, limit, tail)
	if !tail && limit > 0 && len(older.Items) == limit {
		older.More = true
		older.Next = older.Items[len(older.Items)-1].Seq
		return older, nil
	}
	rest := limit
	if !tail && limit > 0 {
		rest -= len(older.Items)
	}
	p := j.all.Read(after, c.matchLog, rest, tail)
	if len(older.Items) > 0 {
		p.Items = append(older.Items, p.Items...)
		if tail && limit > 0 && len(p.Items) > limit {
			p.Items = p.Items[len(p.Items)-limit:]
		}
		p.Oldest = older.Oldest
	}
	return p, nil
}

// ReadAudit returns the audit records after sequence number after that f
// selects, as ReadLogs does.
func (j *Journal) ReadAudit(after uint64, f Filter, limit int, tail bool) (Page[api.AuditRecord], error) {
	c, err := f.compile()
	if err != nil {
		return Page[api.AuditRecord]{}, err
	}
	return j.audit.Read(after, c.matchAudit, limit, tail), nil
}
