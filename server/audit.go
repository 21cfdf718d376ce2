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

// auditQueue is how many records wait for the file in the background mode.
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

	qmu      sync.RWMutex         // held to send to queue, and to close it
	queue    chan api.AuditRecord // nil when required or without a file
	done     chan struct{}
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
		a.queue = make(chan api.AuditRecord, auditQueue)
		a.done = make(chan struct{})
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
	a.qmu.RLock()
	defer a.qmu.RUnlock()
	if a.closed.Load() {
		return nil
	}
	select {
	case a.queue <- rec:
	default:
		a.failed(errors.New("the audit file writer is behind: record dropped"), 1)
	}
	return nil
}

// maxAuditBatch is the most queued records drain writes with one write(2).
const maxAuditBatch = 256

// auditFlushDelay is how long drain gathers records after the first of a
// batch before it writes them. Records come at the pace of the requests,
// and written as soon as each arrived they cost a write(2) for every one
// or two requests: under load 5 % of a node's CPU (2 % still with 2 ms).
// 10 ms adds nothing that a reader of the file can notice, and nothing to
// what a crash loses that an asynchronous trail could not lose anyway
// (the queue); the required trail (log.audit_required) writes each record
// before its answer and is not delayed. docs/deploy.md says so.
const auditFlushDelay = 10 * time.Millisecond

// drain writes the queued records until Close: those that arrive within
// auditFlushDelay of the first, up to maxAuditBatch, in one write rather
// than a system call per record. Close writes what is left.
func (a *auditTrail) drain() {
	defer close(a.done)
	var buf []byte
	n := 0
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	armed := false
	write := func() {
		if armed {
			flush.Stop()
			armed = false
		}
		if n > 0 && len(buf) > 0 {
			a.writeLines(buf, n)
		}
		buf, n = buf[:0], 0
		if cap(buf) > 1<<20 {
			buf = nil // a burst's buffer is not kept
		}
	}
	for {
		select {
		case rec, ok := <-a.queue:
			if !ok {
				write()
				return
			}
			buf = a.appendLine(buf, rec)
			n++
			if n >= maxAuditBatch {
				write()
			} else if !armed {
				flush.Reset(auditFlushDelay)
				armed = true
			}
		case <-flush.C:
			armed = false
			write()
		}
	}
}

// appendLine appends rec's JSON line to buf; a record that cannot be
// encoded is counted as failed and left out.
func (a *auditTrail) appendLine(buf []byte, rec api.AuditRecord) []byte {
	out, err := appendAuditJSON(buf, &rec)
	if err != nil {
		a.failed(err, 1)
		return buf
	}
	return append(out, '\n')
}

// write appends rec to the file; after a failure it tries once to reopen
// the file (it may have been moved away or its disk fixed).
func (a *auditTrail) write(rec api.AuditRecord) error {
	line, err := appendAuditJSON(nil, &rec)
	if err != nil {
		return a.failed(err, 1)
	}
	return a.writeLines(append(line, '\n'), 1)
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
	if a.queue != nil {
		a.qmu.Lock()
		close(a.queue)
		a.qmu.Unlock()
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
