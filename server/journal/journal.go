package journal

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minkms/minkms/api"
)

// Defaults of the ring sizes (log.buffer and log.buffer_bytes).
const (
	DefaultRecords = 10000
	DefaultBytes   = 16 << 20
)

// collapseWindow is how long identical records are folded into one.
const collapseWindow = time.Second

// Options configure a Journal.
type Options struct {
	// Level is the level records must have to be kept and written; the
	// log API changes it at run time. A new LevelVar (INFO) if nil.
	Level *slog.LevelVar
	// Records and Bytes bound each ring: the ring of all records, the
	// ring of WARN and above, and the audit ring (DefaultRecords and
	// DefaultBytes if 0).
	Records int
	Bytes   int
}

// Journal is the node's log pipeline and audit ring. Its Handler is the
// slog.Handler the node logs through.
type Journal struct {
	level *slog.LevelVar
	out   slog.Handler
	node  atomic.Pointer[string]

	mu      sync.Mutex // seq and the fold state; held while writing to out, so stderr is in seq order
	seq     uint64
	fold    foldState
	all     *Ring[api.LogRecord]
	warn    *Ring[api.LogRecord]
	audit   *Ring[api.AuditRecord]
	auditMu sync.Mutex
	aseq    uint64
	errs    atomic.Uint64 // ERROR records handled, folded ones included
}

// foldState is the last record written, and how many identical ones were
// held back since.
type foldState struct {
	key     string
	first   time.Time // when the record was written
	held    int       // identical records held back since
	lastAt  time.Time // the time of the last one held back
	out     slog.Handler
	rec     slog.Record
	fields  map[string]any
	level   slog.Level
	message string
}

// New returns a journal that writes what passes its level to out (the
// node's stderr handler), which should accept every level: the journal
// decides.
func New(out slog.Handler, opts Options) *Journal {
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	if opts.Records <= 0 {
		opts.Records = DefaultRecords
	}
	if opts.Bytes <= 0 {
		opts.Bytes = DefaultBytes
	}
	j := &Journal{
		level: opts.Level,
		out:   out,
		all:   NewRing[api.LogRecord](opts.Records, opts.Bytes),
		warn:  NewRing[api.LogRecord](opts.Records, opts.Bytes),
		audit: NewRing[api.AuditRecord](opts.Records, opts.Bytes),
	}
	empty := ""
	j.node.Store(&empty)
	return j
}

// SetNode sets the node id that every record carries from now on.
func (j *Journal) SetNode(id string) { j.node.Store(&id) }

// Node returns the node id records carry.
func (j *Journal) Node() string { return *j.node.Load() }

// Level returns the level variable: Set changes what is logged at once.
func (j *Journal) Level() *slog.LevelVar { return j.level }

// Handler returns the slog.Handler that feeds the journal.
func (j *Journal) Handler() slog.Handler { return &handler{j: j, out: j.out} }

// Logger returns a logger that feeds the journal.
func (j *Journal) Logger() *slog.Logger { return slog.New(j.Handler()) }

// handler is the journal's slog.Handler; With and WithGroup derive new
// ones that carry their attributes (flattened: "group.key") for the ring
// and pass them to out for the output.
type handler struct {
	j      *Journal
	out    slog.Handler
	attrs  []slog.Attr // flattened, with the group prefix applied
	prefix string      // the open groups, "a.b." or ""
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.j.level.Level() }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.out = h.out.WithAttrs(attrs)
	c.attrs = slices.Clip(h.attrs)
	for _, a := range attrs {
		c.attrs = flatten(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.out = h.out.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// flatten appends a with its key prefixed, groups as "group.key".
func flatten(dst []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return dst
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			dst = flatten(dst, p, g)
		}
		return dst
	}
	a.Key = prefix + a.Key
	return append(dst, a)
}

// fieldValue is what a field holds in the ring: JSON-friendly plain values.
func fieldValue(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time()
	}
	switch a := v.Any().(type) {
	case error:
		return a.Error()
	case fmt.Stringer:
		return a.String()
	case nil:
		return nil
	default:
		return fmt.Sprint(a)
	}
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.j.errs.Add(1)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	attrs := h.attrs
	if r.NumAttrs() > 0 {
		attrs = slices.Clip(attrs)
		r.Attrs(func(a slog.Attr) bool {
			attrs = flatten(attrs, h.prefix, a)
			return true
		})
	}
	fields := make(map[string]any, len(attrs))
	var key strings.Builder
	key.WriteString(r.Level.String())
	key.WriteByte(0)
	key.WriteString(r.Message)
	size := 96 + len(r.Message)
	for _, a := range attrs {
		v := fieldValue(a.Value)
		fields[a.Key] = v
		key.WriteByte(0)
		key.WriteString(a.Key)
		key.WriteByte('=')
		n := key.Len()
		fmt.Fprint(&key, v)
		size += len(a.Key) + key.Len() - n + 8
	}
	if len(fields) == 0 {
		fields = nil
	}

	j := h.j
	j.mu.Lock()
	defer j.mu.Unlock()
	f := &j.fold
	k := key.String()
	if k == f.key && r.Time.Sub(f.first) < collapseWindow && r.Time.Sub(f.first) >= 0 {
		f.held++
		f.lastAt = r.Time
		return nil
	}
	j.flushLocked(ctx)
	*f = foldState{key: k, first: r.Time, out: h.out, rec: r.Clone(), fields: fields, level: r.Level, message: r.Message}
	return j.writeLocked(ctx, h.out, r, fields, size, 0)
}

// flushLocked writes the count of the records held back, if any, as a
// copy of the record with repeated=N.
func (j *Journal) flushLocked(ctx context.Context) {
	f := &j.fold
	if f.held == 0 {
		return
	}
	r := slog.NewRecord(f.lastAt, f.level, f.message, f.rec.PC)
	f.rec.Attrs(func(a slog.Attr) bool { r.AddAttrs(a); return true })
	r.AddAttrs(slog.Int("repeated", f.held))
	j.writeLocked(ctx, f.out, r, f.fields, 96+len(f.message), f.held)
	f.held = 0
}

// Flush writes the count of identical records held back, if any. The
// node calls it when it stops; a held-back count is otherwise written
// with the next record that differs or that comes a second later.
func (j *Journal) Flush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushLocked(context.Background())
}

func (j *Journal) writeLocked(ctx context.Context, out slog.Handler, r slog.Record, fields map[string]any, size, repeated int) error {
	j.seq++
	rec := api.LogRecord{
		Time: r.Time, Node: j.Node(), Seq: j.seq, Level: levelName(r.Level),
		Message: r.Message, Fields: fields, Repeated: repeated,
	}
	j.all.Append(rec.Seq, rec.Time, size, rec)
	if r.Level >= slog.LevelWarn {
		j.warn.Append(rec.Seq, rec.Time, size, rec)
	}
	if out.Enabled(ctx, r.Level) {
		return out.Handle(ctx, r)
	}
	return nil
}

// levelName is the name of a level as records carry it: DEBUG, INFO,
// WARN, ERROR, or these with an offset ("DEBUG-4" for raft's trace).
func levelName(l slog.Level) string { return l.String() }

// ParseLevel reads a level name: debug, info, warn (warning) or error, in
// any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// Changed returns a channel that is closed when the next log record is
// kept.
func (j *Journal) Changed() <-chan struct{} { return j.all.Changed() }

// AuditChanged returns a channel that is closed when the next audit
// record is kept.
func (j *Journal) AuditChanged() <-chan struct{} { return j.audit.Changed() }

// Audit keeps rec in the audit ring with the node's id and the next audit
// sequence number, and returns it as kept.
func (j *Journal) Audit(rec api.AuditRecord) api.AuditRecord {
	j.auditMu.Lock()
	defer j.auditMu.Unlock()
	j.aseq++
	rec.Node, rec.Seq = j.Node(), j.aseq
	size := 160 + len(rec.Identity) + len(rec.Path) + len(rec.Object) + len(rec.Enclave) + len(rec.Remote)
	j.audit.Append(rec.Seq, rec.Time, size, rec)
	return rec
}

// Journal returns the journal h feeds: how a program finds the journal
// behind a logger.
func (h *handler) Journal() *Journal { return h.j }

// LastLog returns the sequence number of the last log record kept.
func (j *Journal) LastLog() uint64 { return j.all.Last() }

// ErrorEvents returns how many records of level ERROR or above were
// logged, identical ones that were folded into one included.
func (j *Journal) ErrorEvents() uint64 { return j.errs.Load() }

// LastAudit returns the sequence number of the last audit record kept.
func (j *Journal) LastAudit() uint64 { return j.audit.Last() }
