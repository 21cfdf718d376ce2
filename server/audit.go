package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server/journal"
)

// The audit trail: one record per API request (see auditRequests), kept in
// the journal's audit ring and, with log.audit_file, appended to a file as
// JSON lines. With log.audit_required the record is written before the
// response and a request whose record cannot be written is refused; by
// default records are written in the background, and a failure is counted
// and logged but does not hold up requests.

// auditQueue is how many records wait for the file in the background mode;
// more are dropped, counted and logged.
const auditQueue = 4096

// auditWarnEvery bounds how often a failing audit file is logged.
const auditWarnEvery = 10 * time.Second

// errAuditUnavailable answers a request whose audit record cannot be
// written with log.audit_required.
var errAuditUnavailable = &httpError{Status: 503, Message: "audit log unavailable: the request was refused because its audit record cannot be written"}

// auditTrail writes audit records.
type auditTrail struct {
	journal  *journal.Journal
	log      *slog.Logger
	path     string // "" for the ring only
	required bool

	mu       sync.Mutex // the file
	file     *os.File
	lastErr  error
	lastWarn time.Time

	// The background mode's lines waiting for the file (drain).
	pmu      sync.Mutex
	pending  []byte // encoded lines
	pendingN int    // records in pending
	spare    []byte // drain's: the last batch's buffer, for the next
	wake     chan struct{}
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed by drain when it has written the last

	failures atomic.Uint64 // records that could not be written to the file
	closed   atomic.Bool
}

// newAuditTrail opens the audit file of c, if any. A file that cannot be
// opened stops the node from starting: it would lose the trail.
func newAuditTrail(j *journal.Journal, log *slog.Logger, c LogConfig) (*auditTrail, error) {
	a := &auditTrail{journal: j, log: log, path: c.AuditFile, required: c.AuditRequired}
	if a.path == "" {
		return a, nil
	}
	f, err := openAuditFile(a.path)
	if err != nil {
		return nil, fmt.Errorf("opening the audit file (log.audit_file): %w", err)
	}
	a.file = f
	if !a.required {
		a.wake, a.stop, a.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go a.drain()
	}
	return a, nil
}

func openAuditFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}

// Record keeps rec in the ring and writes it to the file: at once with
// log.audit_required (its error says the record was not written), else in
// the background (Record never blocks then, and returns nil).
func (a *auditTrail) Record(rec api.AuditRecord) error {
	rec = a.journal.Audit(rec)
	switch {
	case a.path == "":
		return nil
	case a.required:
		return a.write(rec)
	}
	// Encoded here, on the request's goroutine, so that the lock is held
	// for a copy only.
	lp := auditLineBufs.Get().(*[]byte)
	defer auditLineBufs.Put(lp)
	line, err := appendAuditLine((*lp)[:0], &rec)
	if err != nil {
		a.failed(err, 1)
		return nil
	}
	*lp = line
	a.pmu.Lock()
	if a.closed.Load() {
		a.pmu.Unlock()
		return nil
	}
	if a.pendingN >= auditQueue {
		a.pmu.Unlock()
		a.failed(errors.New("the audit file writer is behind: record dropped"), 1)
		return nil
	}
	first := a.pendingN == 0
	a.pending = append(a.pending, line...)
	a.pendingN++
	a.pmu.Unlock()
	if first {
		select {
		case a.wake <- struct{}{}:
		default: // drain was woken already
		}
	}
	return nil
}

// auditLineBufs are the buffers Record encodes a line in.
var auditLineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// auditFlushDelay is how long drain gathers records after the first of a
// batch before it writes them. Records come at the pace of the requests,
// and written as soon as each arrived they cost a write(2) for every one
// or two requests: under load 5 % of a node's CPU (2 % still with 2 ms).
// 10 ms adds nothing that a reader of the file can notice, and nothing to
// what a crash loses that an asynchronous trail could not lose anyway
// (the queue); the required trail (log.audit_required) writes each record
// before its answer and is not delayed. docs/deploy.md says so.
const auditFlushDelay = 10 * time.Millisecond

// drain writes the pending records until Close: the records that arrive
// within auditFlushDelay of the first of a batch, in one write. It wakes
// once per batch, not once per record: a wake-up per request cost the
// scheduler more than the write. Close writes what is left.
func (a *auditTrail) drain() {
	defer close(a.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-a.wake:
		case <-a.stop:
			a.flush()
			return
		}
		t.Reset(auditFlushDelay)
		select {
		case <-t.C:
		case <-a.stop:
			t.Stop()
			a.flush()
			return
		}
		a.flush()
	}
}

// flush writes the pending records. Only drain calls it.
func (a *auditTrail) flush() {
	a.pmu.Lock()
	buf, n := a.pending, a.pendingN
	a.pending, a.pendingN = a.spare[:0], 0
	a.pmu.Unlock()
	if n > 0 {
		a.writeLines(buf, n)
	}
	if cap(buf) > 1<<20 {
		buf = nil // a burst's buffer is not kept
	}
	a.spare = buf[:0]
}

// write appends rec to the file; after a failure it tries once to reopen
// the file (it may have been moved away or its disk fixed).
func (a *auditTrail) write(rec api.AuditRecord) error {
	line, err := appendAuditLine(nil, &rec)
	if err != nil {
		return a.failed(err, 1)
	}
	return a.writeLines(line, 1)
}

// appendAuditLine appends rec's line of the file to buf: its JSON and a
// newline.
func appendAuditLine(buf []byte, rec *api.AuditRecord) ([]byte, error) {
	buf, err := appendAuditJSON(buf, rec)
	if err != nil {
		return buf, err
	}
	return append(buf, '\n'), nil
}

// writeLines appends n records' lines to the file, as write does one.
func (a *auditTrail) writeLines(lines []byte, n int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == nil || a.lastErr != nil {
		a.reopenLocked()
	}
	if a.file == nil {
		return a.failedLocked(a.lastErr, n)
	}
	if _, err := a.file.Write(lines); err != nil {
		a.lastErr = err
		return a.failedLocked(err, n)
	}
	if a.lastErr != nil {
		a.log.Info("The audit file is written again", slog.String("file", a.path))
		a.lastErr = nil
	}
	return nil
}

// Ready returns nil if the audit file can be written as far as is known:
// a required trail refuses requests before they act while it is failing.
func (a *auditTrail) Ready() error {
	if a.path == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastErr != nil || a.file == nil {
		a.reopenLocked()
		if a.file == nil {
			return a.lastErr
		}
		a.lastErr = nil
	}
	return nil
}

func (a *auditTrail) failed(err error, n int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failedLocked(err, n)
}

// failedLocked counts records (count of them) not written and logs it, at
// most every auditWarnEvery.
func (a *auditTrail) failedLocked(err error, count int) error {
	n := a.failures.Add(uint64(count))
	if err == nil {
		err = errors.New("not open")
	}
	if time.Since(a.lastWarn) >= auditWarnEvery {
		a.lastWarn = time.Now()
		a.log.Warn("Could not write to the audit file; records are missing from it",
			slog.String("file", a.path), slog.Uint64("failed_records", n), slog.Bool("required", a.required), slog.Any("error", err))
	}
	return err
}

// Failures returns how many records could not be written to the file.
func (a *auditTrail) Failures() uint64 { return a.failures.Load() }

// Reopen closes and reopens the audit file, for logrotate (SIGHUP).
func (a *auditTrail) Reopen() {
	if a.path == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reopenLocked()
	if a.lastErr == nil {
		a.log.Info("Audit file reopened", slog.String("file", a.path))
	}
}

func (a *auditTrail) reopenLocked() {
	if a.file != nil {
		a.file.Close()
		a.file = nil
	}
	f, err := openAuditFile(a.path)
	if err != nil {
		a.lastErr = err
		return
	}
	a.file, a.lastErr = f, nil
}

// Close writes what is queued and closes the file.
func (a *auditTrail) Close() error {
	if a == nil || a.path == "" || !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	if a.stop != nil {
		// A Record that saw the trail open has its line pending before
		// this lock is taken; the last flush writes it.
		a.pmu.Lock()
		a.pmu.Unlock()
		close(a.stop)
		<-a.done
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file == nil {
		return nil
	}
	err := a.file.Close()
	a.file = nil
	return err
}
