package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

// findingsLog logs the findings of successive evaluations of the cluster's
// health so that each is read once: a new finding, or one that changed, as
// a WARN line (INFO for an info finding) in the words of Finding.Message,
// and a finding that went away as INFO "Cleared: <its message>". Findings
// are told apart by Finding.Key (kind and nodes).
//
// A finding that refers to a moment (an expiry, consensus at risk) changes
// when that moment or its severity does, not when its countdown ("expires
// in 36h", then "35h") does: the line is not repeated every hour. Other
// findings change with their message too, which says why (a reload that
// fails for another reason).
type findingsLog struct {
	log  *slog.Logger
	seen map[string]health.Finding // by Key, as last logged
}

func newFindingsLog(log *slog.Logger) *findingsLog {
	return &findingsLog{log: log, seen: make(map[string]health.Finding)}
}

// update logs what changed since the previous call.
func (l *findingsLog) update(ctx context.Context, findings []health.Finding) {
	now := make(map[string]health.Finding, len(findings))
	for _, f := range findings {
		k := f.Key()
		now[k] = f
		if prev, ok := l.seen[k]; ok && !findingChanged(prev, f) {
			continue
		}
		level := slog.LevelWarn
		if f.Severity == health.Info {
			level = slog.LevelInfo
		}
		l.log.Log(ctx, level, f.Message, findingAttrs(f)...)
	}
	cleared := make([]string, 0)
	for k := range l.seen {
		if _, ok := now[k]; !ok {
			cleared = append(cleared, k)
		}
	}
	slices.Sort(cleared)
	for _, k := range cleared {
		f := l.seen[k]
		l.log.Log(ctx, slog.LevelInfo, "Cleared: "+f.Message, findingAttrs(f)...)
	}
	// Unchanged findings keep the message they were logged with, so that
	// a countdown does not count as a change later either.
	for k, f := range now {
		if prev, ok := l.seen[k]; ok && !findingChanged(prev, f) {
			now[k] = prev
		}
	}
	l.seen = now
}

// findingChanged reports whether cur is worth logging again after prev.
func findingChanged(prev, cur health.Finding) bool {
	if prev.Severity != cur.Severity || !prev.At.Equal(cur.At) {
		return true
	}
	return cur.At.IsZero() && prev.Message != cur.Message
}

// findingAttrs are the structured fields of a finding's log line.
func findingAttrs(f health.Finding) []any {
	attrs := []any{
		slog.String("kind", string(f.Kind)),
		slog.String("severity", string(f.Severity)),
		slog.String("nodes", strings.Join(f.Nodes, ",")),
	}
	if !f.At.IsZero() {
		attrs = append(attrs, slog.String("at", f.At.UTC().Format(time.RFC3339)))
	}
	return attrs
}
