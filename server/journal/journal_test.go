package journal_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server/journal"
)

func newJournal(t *testing.T, opts journal.Options) (*journal.Journal, *slog.Logger, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	j := journal.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.Level(-100)}), opts)
	j.SetNode("n1")
	return j, j.Logger(), &out
}

func mustRead(t *testing.T, j *journal.Journal, after uint64, f journal.Filter, limit int, tail bool) journal.Page[api.LogRecord] {
	t.Helper()
	p, err := j.ReadLogs(after, f, limit, tail)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func messages(recs []api.LogRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Message)
	}
	return out
}

func TestJournalRecords(t *testing.T) {
	j, log, out := newJournal(t, journal.Options{})
	log.With(slog.String("component", "raft")).WithGroup("g").Info("hello", slog.Int("n", 1), slog.Any("err", fmt.Errorf("boom")))
	log.Debug("not kept at info")
	p := mustRead(t, j, 0, journal.Filter{}, 0, false)
	if len(p.Items) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(p.Items), p.Items)
	}
	r := p.Items[0]
	if r.Node != "n1" || r.Seq != 1 || r.Level != "INFO" || r.Message != "hello" {
		t.Errorf("record = %+v", r)
	}
	if r.Fields["component"] != "raft" || r.Fields["g.n"] != int64(1) || r.Fields["g.err"] != "boom" {
		t.Errorf("fields = %v", r.Fields)
	}
	if !strings.Contains(out.String(), "component=raft") || strings.Contains(out.String(), "not kept") {
		t.Errorf("output:\n%s", out)
	}
}

func TestJournalLevelChangesAtRunTime(t *testing.T) {
	j, log, out := newJournal(t, journal.Options{})
	log.Debug("one")
	j.Level().Set(slog.LevelDebug)
	log.Debug("two")
	if got := messages(mustRead(t, j, 0, journal.Filter{}, 0, false).Items); len(got) != 1 || got[0] != "two" {
		t.Errorf("records = %v, want [two]", got)
	}
	if strings.Contains(out.String(), "one") || !strings.Contains(out.String(), "two") {
		t.Errorf("output:\n%s", out)
	}
}

// TestJournalWarnRingOutlivesFlood: a flood of INFO records does not push a
// warning out of reach.
func TestJournalWarnRingOutlivesFlood(t *testing.T) {
	j, log, _ := newJournal(t, journal.Options{Records: 100})
	log.Warn("Certificate /etc/minkms/node.crt expires in 36h")
	for i := range 1000 {
		log.Info("flood", slog.Int("i", i))
	}
	got := mustRead(t, j, 0, journal.Filter{Level: "warn"}, 0, false)
	if len(got.Items) != 1 || got.Items[0].Seq != 1 {
		t.Fatalf("warn records = %+v", got.Items)
	}
	all := mustRead(t, j, 0, journal.Filter{}, 0, false)
	if len(all.Items) != 101 || all.Items[0].Level != "WARN" {
		t.Fatalf("got %d records (first %+v), want the warning and the last 100", len(all.Items), all.Items[0])
	}
	if all.Evicted == 0 {
		t.Error("Evicted = 0 after the ring overflowed")
	}
}

func TestJournalByteBound(t *testing.T) {
	j, log, _ := newJournal(t, journal.Options{Records: 1000, Bytes: 64 << 10})
	big := strings.Repeat("x", 1024)
	for range 200 {
		log.Info("big", slog.String("v", big))
	}
	p := mustRead(t, j, 0, journal.Filter{}, 0, false)
	if len(p.Items) >= 64 || len(p.Items) == 0 {
		t.Errorf("kept %d records of 1 KiB in a 64 KiB ring", len(p.Items))
	}
}

func TestJournalFoldsRepeats(t *testing.T) {
	j, log, out := newJournal(t, journal.Options{})
	for range 5 {
		log.Warn("Peer unreachable", slog.String("peer", "n2"))
	}
	log.Info("something else")
	got := mustRead(t, j, 0, journal.Filter{}, 0, false).Items
	if len(got) != 3 {
		t.Fatalf("records = %+v, want the first, the fold of 4, the next", got)
	}
	if got[1].Repeated != 4 || got[1].Message != "Peer unreachable" {
		t.Errorf("fold = %+v", got[1])
	}
	if n := strings.Count(out.String(), "Peer unreachable"); n != 2 || !strings.Contains(out.String(), "repeated=4") {
		t.Errorf("output has %d lines of it:\n%s", n, out)
	}
}

func TestFilter(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := func(min int, level, msg string) api.LogRecord {
		return api.LogRecord{Time: base.Add(time.Duration(min) * time.Minute), Level: level, Message: msg}
	}
	tests := []struct {
		name string
		f    journal.Filter
		r    api.LogRecord
		want bool
	}{
		{"Empty", journal.Filter{}, rec(0, "DEBUG", "x"), true},
		{"LevelBelow", journal.Filter{Level: "warn"}, rec(0, "INFO", "x"), false},
		{"LevelAt", journal.Filter{Level: "warn"}, rec(0, "WARN", "x"), true},
		{"LevelAbove", journal.Filter{Level: "WARNING"}, rec(0, "ERROR", "x"), true},
		{"TraceBelowDebug", journal.Filter{Level: "debug"}, rec(0, "DEBUG-4", "x"), false},
		{"SinceBefore", journal.Filter{Since: base}, rec(-1, "INFO", "x"), false},
		{"SinceEqual", journal.Filter{Since: base}, rec(0, "INFO", "x"), true},
		{"UntilAfter", journal.Filter{Until: base}, rec(1, "INFO", "x"), false},
		{"UntilEqual", journal.Filter{Until: base}, rec(0, "INFO", "x"), true},
		{"MessageAnyCase", journal.Filter{Message: "certificate"}, rec(0, "WARN", "Certificate a.crt expires in 3h"), true},
		{"MessageMissing", journal.Filter{Message: "expired"}, rec(0, "WARN", "Certificate a.crt expires in 3h"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.MatchLog(tt.r); got != tt.want {
				t.Errorf("MatchLog = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("BadLevel", func(t *testing.T) {
		if err := (journal.Filter{Level: "loud"}).Check(); err == nil {
			t.Error("no error for level loud")
		}
	})
	t.Run("UntilBeforeSince", func(t *testing.T) {
		if err := (journal.Filter{Since: base, Until: base.Add(-time.Hour)}).Check(); err == nil {
			t.Error("no error for until before since")
		}
	})
}

// TestReadLimit: -n N is the last N records (tail), and a forward read
// pages through the rest.
func TestReadLimit(t *testing.T) {
	j, log, _ := newJournal(t, journal.Options{})
	for i := range 10 {
		log.Info(fmt.Sprint("m", i))
	}
	if got := messages(mustRead(t, j, 0, journal.Filter{}, 3, true).Items); fmt.Sprint(got) != "[m7 m8 m9]" {
		t.Errorf("tail 3 = %v", got)
	}
	p := mustRead(t, j, 0, journal.Filter{}, 4, false)
	if fmt.Sprint(messages(p.Items)) != "[m0 m1 m2 m3]" || !p.More || p.Next != 4 {
		t.Errorf("first page = %v more=%v next=%d", messages(p.Items), p.More, p.Next)
	}
	p = mustRead(t, j, p.Next, journal.Filter{}, 100, false)
	if fmt.Sprint(messages(p.Items)) != "[m4 m5 m6 m7 m8 m9]" || p.More || p.Next != 10 {
		t.Errorf("second page = %v more=%v next=%d", messages(p.Items), p.More, p.Next)
	}
}

func TestChangedWakesReaders(t *testing.T) {
	j, log, _ := newJournal(t, journal.Options{})
	ch := j.Changed()
	go log.Info("news")
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed was not closed by a new record")
	}
	_ = context.Background()
}

func BenchmarkJournalInfo(b *testing.B) {
	j := journal.New(slog.DiscardHandler, journal.Options{})
	log := j.Logger().With(slog.String("component", "tls"))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		log.Info("Request", slog.Int("i", i), slog.String("path", "/v1/key/create/k"))
	}
}
