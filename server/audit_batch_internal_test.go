package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server/journal"
)

// TestAuditTrailBatchedWrites: records queued while the writer is busy are
// written together, each still one whole JSON line, in the order each
// sender queued them, and Close writes every queued record.
func TestAuditTrailBatchedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	j := journal.New(slog.DiscardHandler, journal.Options{})
	a, err := newAuditTrail(j, slog.New(slog.DiscardHandler), LogConfig{AuditFile: path})
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 4, 2000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				a.Record(api.AuditRecord{RequestID: fmt.Sprintf("%d-%d", s, i), Status: 200})
			}
		})
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next := make([]int, senders)
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec api.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d is not a record: %v: %q", lines+1, err, sc.Text())
		}
		var s, i int
		if _, err := fmt.Sscanf(rec.RequestID, "%d-%d", &s, &i); err != nil || s < 0 || s >= senders {
			t.Fatalf("line %d: request id %q", lines+1, rec.RequestID)
		}
		if i < next[s] {
			t.Fatalf("line %d: record %s after %d-%d", lines+1, rec.RequestID, s, next[s]-1)
		}
		next[s] = i + 1
		lines++
	}
	if dropped := a.failures.Load(); uint64(lines)+dropped != senders*each {
		t.Fatalf("%d lines and %d dropped records, want %d in all", lines, dropped, senders*each)
	}
	if lines == 0 {
		t.Fatal("no records written")
	}
}

// TestAuditTrailFlushesAlone: a lone record reaches the file within the
// flush delay, without more records or a Close to push it, and so does
// the next one.
func TestAuditTrailFlushesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	j := journal.New(slog.DiscardHandler, journal.Options{})
	a, err := newAuditTrail(j, slog.New(slog.DiscardHandler), LogConfig{AuditFile: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for n := 1; n <= 2; n++ {
		a.Record(api.AuditRecord{RequestID: fmt.Sprint(n), Status: 200})
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Count(b, []byte("\n")); got == n {
				break
			} else if got > n {
				t.Fatalf("%d lines after %d records", got, n)
			}
			if time.Now().After(deadline) {
				t.Fatalf("record %d not in the file after 10s", n)
			}
			time.Sleep(auditFlushDelay)
		}
	}
}
