package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/server/journal"
)

// The log routes serve the journal: GET /v1/logs and /v1/logs/audit
// (JSON lines; node=all merges every member's records by time), PUT
// /v1/logs/level, and KES's GET /v1/log/error and /v1/log/audit. They run
// without the request timeout: a stream lasts until the client goes away
// or the node shuts down, with a deadline per write of its own.

// Timings of the log streams.
const (
	streamWriteTimeout = 30 * time.Second       // per line: a client that reads nothing for this long is cut off
	followPoll         = 250 * time.Millisecond // how often a follow asks the other nodes for news
	askLogsTimeout     = 5 * time.Second        // per node and read
	logPage            = 500                    // records per read from another node
	maxLogAnswer       = 3 << 20                // bytes of one node's answer (peernet allows 4 MiB)
)

// logsMethod is the internal "ask node X" method that reads a node's
// journal.
const logsMethod = "logs.read"

// logPeers asks the other members; *cluster.Node is one.
type logPeers interface {
	Ask(ctx context.Context, id, method string, req, resp any) error
	AskAll(ctx context.Context, method string, req any, timeout time.Duration) []cluster.Answer
}

var _ logPeers = (*cluster.Node)(nil)

// logsRead is the request of logsMethod.
type logsRead struct {
	Audit  bool           `json:"audit,omitempty"`
	Filter journal.Filter `json:"filter"`
	// Cursors holds, per node, the last sequence number the reader has:
	// a node with one reads forward from there, in pages; a node without
	// one reads the last Limit records (all if 0) with Tail, else from
	// its oldest.
	Cursors map[string]uint64 `json:"cursors,omitempty"`
	Limit   int               `json:"limit,omitempty"`
	Tail    bool              `json:"tail,omitempty"`
}

// logsAnswer is a node's answer to logsMethod.
type logsAnswer struct {
	Logs    []api.LogRecord   `json:"logs,omitempty"`
	Audit   []api.AuditRecord `json:"audit,omitempty"`
	Next    uint64            `json:"next"`
	Evicted uint64            `json:"evicted,omitempty"`
	More    bool              `json:"more,omitempty"`
}

func (a *logsAnswer) len() int { return len(a.Logs) + len(a.Audit) }

// readJournal reads this node's journal.
func (h *handler) readJournal(audit bool, f journal.Filter, after uint64, limit int, tail bool) (logsAnswer, error) {
	if audit {
		p, err := h.journal.ReadAudit(after, f, limit, tail)
		return logsAnswer{Audit: p.Items, Next: p.Next, Evicted: p.Evicted, More: p.More}, err
	}
	p, err := h.journal.ReadLogs(after, f, limit, tail)
	return logsAnswer{Logs: p.Items, Next: p.Next, Evicted: p.Evicted, More: p.More}, err
}

// serveLogsRead answers another node's logsMethod, in pages that fit an
// internal RPC answer.
func (h *handler) serveLogsRead(_ context.Context, _ string, raw json.RawMessage) (any, error) {
	var req logsRead
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("%w: %w", cluster.ErrRefused, err)
	}
	if req.Tail && (req.Limit <= 0 || req.Limit > 2*logPage) {
		req.Limit = 2 * logPage
	}
	a, err := h.readJournalFor(h.journal.Node(), req)
	if err != nil {
		return nil, err
	}
	for a.len() > 1 {
		data, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		if len(data) <= maxLogAnswer {
			break
		}
		a = halve(a, req.Tail)
	}
	return a, nil
}

// halve drops half of a's records: the oldest of a tail read, the newest
// of a forward read (which then has more to read).
func halve(a logsAnswer, tail bool) logsAnswer {
	if tail {
		a.Logs = a.Logs[len(a.Logs)/2:]
		a.Audit = a.Audit[len(a.Audit)/2:]
		return a
	}
	a.More = true
	if n := len(a.Logs); n > 0 {
		a.Logs = a.Logs[:n/2]
		a.Next = a.Logs[len(a.Logs)-1].Seq
	}
	if n := len(a.Audit); n > 0 {
		a.Audit = a.Audit[:n/2]
		a.Next = a.Audit[len(a.Audit)-1].Seq
	}
	return a
}

// logRoutes registers the log routes.
func (h *handler) logRoutes(r chi.Router, putOrPost func(chi.Router, string, apiFunc)) {
	r.With(native).Get("/v1/logs", h.handle(func(w http.ResponseWriter, r *http.Request) error { return h.logs(w, r, false) }))
	r.With(native).Get("/v1/logs/audit", h.handle(func(w http.ResponseWriter, r *http.Request) error { return h.logs(w, r, true) }))
	r.Group(func(r chi.Router) {
		r.Use(native, timeout(h.timeout))
		putOrPost(r, "/v1/logs/level", h.setLogLevel)
	})
	r.Get("/v1/log/error", h.handle(h.kesErrorLog))
	r.Get("/v1/log/audit", h.handle(h.kesAuditLog))
}

// logQuery is a parsed GET /v1/logs request.
type logQuery struct {
	filter journal.Filter
	node   string // "" this node, "all", or a node id
	limit  int
	follow bool
	after  map[string]uint64 // resume: the last sequence number seen per node
}

// parseLogQuery reads the parameters of the log routes.
func parseLogQuery(r *http.Request, now time.Time) (logQuery, error) {
	v := r.URL.Query()
	q := logQuery{node: v.Get("node"), after: map[string]uint64{}}
	q.filter.Level = v.Get("level")
	q.filter.Message = v.Get("message")
	var err error
	if q.filter.Since, err = parseLogTime(v.Get("since"), now); err != nil {
		return q, kms.Invalidf("invalid since=%q: %v", v.Get("since"), err)
	}
	if q.filter.Until, err = parseLogTime(v.Get("until"), now); err != nil {
		return q, kms.Invalidf("invalid until=%q: %v", v.Get("until"), err)
	}
	if err := q.filter.Check(); err != nil {
		return q, kms.Invalidf("invalid log query: %v", err)
	}
	if s := v.Get("limit"); s != "" {
		if q.limit, err = strconv.Atoi(s); err != nil || q.limit < 0 {
			return q, kms.Invalidf("invalid limit=%q: want a number of records", s)
		}
	}
	switch f := v.Get("follow"); f {
	case "", "false", "0":
	case "true", "1":
		q.follow = true
	default:
		return q, kms.Invalidf("invalid follow=%q: use true or false", f)
	}
	if q.node != "" && q.node != "all" {
		if err := kms.ValidName(q.node); err != nil {
			return q, kms.Invalidf("invalid node=%q: want a node id or all", q.node)
		}
	}
	for part := range strings.SplitSeq(v.Get("after"), ",") {
		if part == "" {
			continue
		}
		id, seq, ok := strings.Cut(part, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || id == "" {
			return q, kms.Invalidf("invalid after=%q: want node:seq,node:seq", v.Get("after"))
		}
		q.after[id] = n
	}
	return q, nil
}

// parseLogTime reads since or until: RFC 3339, or a duration back from
// now ("2h", "90m").
func parseLogTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-05-01T12:00:00Z) or a duration (2h)")
	}
	return t, nil
}

// authorizeLogs checks that the caller may read the stream of node.
func (h *handler) authorizeLogs(r *http.Request, audit bool, node string) error {
	a := kms.ActionLogRead
	if audit {
		a = kms.ActionAuditRead
	}
	if node == "" {
		node = h.journal.Node()
	}
	return h.svc.AuthorizeNode(r.Context(), callerOf(r.Context()), a, node)
}

// lineWriter writes JSON lines to a stream, each within its own deadline.
type lineWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *json.Encoder
	follow bool
	err    error
}

func newLineWriter(w http.ResponseWriter, follow bool) *lineWriter {
	rc := http.NewResponseController(w)
	// The server's read timeout would end the request's context in the
	// middle of a long stream; its write timeout would cut it.
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return &lineWriter{w: w, rc: rc, enc: json.NewEncoder(w), follow: follow}
}

func (lw *lineWriter) write(v any) error {
	if lw.err != nil {
		return lw.err
	}
	lw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if lw.err = lw.enc.Encode(v); lw.err == nil && lw.follow {
		lw.err = lw.rc.Flush()
	}
	return lw.err
}

// start sends the header, so that a follow client knows it is connected.
func (lw *lineWriter) start() error {
	lw.w.WriteHeader(http.StatusOK)
	if lw.follow {
		lw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		lw.err = lw.rc.Flush()
	}
	return lw.err
}

// logs serves GET /v1/logs and /v1/logs/audit.
func (h *handler) logs(w http.ResponseWriter, r *http.Request, audit bool) error {
	q, err := parseLogQuery(r, time.Now())
	if err != nil {
		return err
	}
	if err := h.authorizeLogs(r, audit, q.node); err != nil {
		return err
	}
	lw := newLineWriter(w, q.follow)
	if err := lw.start(); err != nil {
		return nil
	}
	s := &logStream{h: h, q: q, audit: audit, out: lw, cursor: map[string]uint64{}, silent: map[string]bool{}}
	for id, seq := range q.after {
		s.cursor[id] = seq
	}
	s.run(r.Context())
	return nil
}

// logStream is one reader of the log routes.
type logStream struct {
	h      *handler
	q      logQuery
	audit  bool
	out    *lineWriter
	cursor map[string]uint64 // per node: the last sequence number read
	silent map[string]bool   // per node: it did not answer the last time
	// transform, if set, turns each record into the line written (nil:
	// none), for KES's routes.
	transform func(any) any
}

// nodeAnswer is one node's answer to a read.
type nodeAnswer struct {
	node string
	a    logsAnswer
	err  error
}

// read asks the nodes of the query: this one, a named one, or all.
func (s *logStream) read(ctx context.Context, req logsRead) []nodeAnswer {
	self := s.h.journal.Node()
	switch {
	case s.q.node == "" || s.q.node == self || s.h.logPeers == nil && s.q.node == "all":
		a, err := s.h.readJournalFor(self, req)
		return []nodeAnswer{{node: self, a: a, err: err}}
	case s.h.logPeers == nil:
		return []nodeAnswer{{node: s.q.node, err: fmt.Errorf("%w: %s", errNotMember, s.q.node)}}
	case s.q.node != "all":
		var a logsAnswer
		actx, cancel := context.WithTimeout(ctx, askLogsTimeout)
		defer cancel()
		err := s.h.logPeers.Ask(actx, s.q.node, logsMethod, req, &a)
		return []nodeAnswer{{node: s.q.node, a: a, err: err}}
	}
	var out []nodeAnswer
	for _, ans := range s.h.logPeers.AskAll(ctx, logsMethod, req, askLogsTimeout) {
		na := nodeAnswer{node: ans.NodeID, err: ans.Err}
		if na.err == nil {
			na.err = json.Unmarshal(ans.Result, &na.a)
		}
		out = append(out, na)
	}
	return out
}

// readJournalFor answers req as node self: a forward read after the
// node's cursor if req has one, else a tail read of req.Limit.
func (h *handler) readJournalFor(self string, req logsRead) (logsAnswer, error) {
	after, ok := req.Cursors[self]
	if ok {
		return h.readJournal(req.Audit, req.Filter, after, logPage, false)
	}
	return h.readJournal(req.Audit, req.Filter, 0, req.Limit, req.Tail)
}

// line is a record on its way to the stream.
type line struct {
	time    time.Time
	v       any
	resumed bool // read after the node's cursor: never cut by the limit
}

// lastOfTail keeps the last limit of the lines of tail reads (the merged
// history of every node), and every resumed line.
func lastOfTail(lines []line, limit int) []line {
	n := 0
	for _, l := range lines {
		if !l.resumed {
			n++
		}
	}
	drop := n - limit
	if drop <= 0 {
		return lines
	}
	out := lines[:0:0]
	for _, l := range lines {
		if !l.resumed && drop > 0 {
			drop--
			continue
		}
		out = append(out, l)
	}
	return out
}

// run writes the records the query asks for, then, when following, what
// comes after, until ctx ends, the node shuts down or a write fails.
func (s *logStream) run(ctx context.Context) {
	for {
		req := logsRead{Audit: s.audit, Filter: s.q.filter, Limit: s.q.limit, Tail: true, Cursors: maps.Clone(s.cursor)}
		answers := s.read(ctx, req)
		if ctx.Err() != nil {
			return
		}
		var lines []line
		more := false
		for _, na := range answers {
			if na.err != nil {
				if !s.silent[na.node] {
					s.silent[na.node] = true
					if s.notice(na.node, api.NoticeUnreachable, fmt.Sprintf("node %s did not answer: %v", na.node, na.err), 0) != nil {
						return
					}
				}
				continue
			}
			if s.silent[na.node] {
				delete(s.silent, na.node)
				if s.notice(na.node, api.NoticeReachable, fmt.Sprintf("node %s answers again", na.node), 0) != nil {
					return
				}
			}
			if c, ok := s.cursor[na.node]; ok && na.a.Evicted > c {
				lost := na.a.Evicted - c
				msg := fmt.Sprintf("up to %d records of node %s were dropped before this reader got them (the node keeps log.buffer records)", lost, na.node)
				if s.notice(na.node, api.NoticeLost, msg, lost) != nil {
					return
				}
			}
			_, resumed := s.cursor[na.node]
			for _, r := range na.a.Logs {
				lines = append(lines, line{r.Time, r, resumed})
			}
			for _, r := range na.a.Audit {
				lines = append(lines, line{r.Time, r, resumed})
			}
			if na.a.Next > 0 {
				s.cursor[na.node] = max(s.cursor[na.node], na.a.Next)
			}
			more = more || na.a.More
		}
		slices.SortStableFunc(lines, func(a, b line) int { return a.time.Compare(b.time) })
		if s.q.limit > 0 {
			lines = lastOfTail(lines, s.q.limit)
		}
		for _, l := range lines {
			v := l.v
			if s.transform != nil {
				if v = s.transform(v); v == nil {
					continue
				}
			}
			if s.out.write(v) != nil {
				return
			}
		}
		if more {
			continue
		}
		if !s.q.follow {
			return
		}
		if !s.wait(ctx) {
			return
		}
	}
}

// wait returns when there may be news: at once for this node's own
// records, after followPoll for the others'. It returns false when the
// stream is to end.
func (s *logStream) wait(ctx context.Context) bool {
	var changed <-chan struct{}
	if s.q.node == "" || s.q.node == s.h.journal.Node() {
		if s.audit {
			changed = s.h.journal.AuditChanged()
		} else {
			changed = s.h.journal.Changed()
		}
	}
	t := time.NewTimer(followPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-s.h.shutdown:
		return false
	case <-changed:
		// Let a burst of records arrive, to send them together.
		time.Sleep(10 * time.Millisecond)
		return true
	case <-t.C:
		return true
	}
}

// notice writes a line about node that is not a record.
func (s *logStream) notice(node, kind, msg string, lost uint64) error {
	if s.audit {
		return s.out.write(api.AuditRecord{Time: time.Now().UTC(), Node: node, Notice: kind, Message: msg, Lost: lost})
	}
	return s.out.write(api.LogRecord{Time: time.Now().UTC(), Node: node, Notice: kind, Message: msg, Lost: lost})
}

// levelMethod is the internal "ask node X" method that sets a node's level.
const levelMethod = "logs.level"

// levelAsk is the request of levelMethod: the level, and the identity
// that asked the node that asks.
type levelAsk struct {
	Level string `json:"level"`
	By    string `json:"by"`
}

// serveSetLevel answers another node's levelMethod.
func (h *handler) serveSetLevel(_ context.Context, from string, raw json.RawMessage) (any, error) {
	var req levelAsk
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("%w: %w", cluster.ErrRefused, err)
	}
	return h.setLevel(req.Level, req.By+" through "+from)
}

// setLevel sets this node's level; by is who asked, for the log.
func (h *handler) setLevel(level, by string) (api.LogLevelResponse, error) {
	l, err := journal.ParseLevel(level)
	if err != nil {
		return api.LogLevelResponse{}, kms.Invalidf("%v", err)
	}
	old := h.journal.Level().Level()
	h.journal.Level().Set(l)
	h.log.Info("Log level changed", slog.String("from", old.String()), slog.String("to", l.String()), slog.String("by", by))
	return api.LogLevelResponse{Node: h.journal.Node(), Level: l.String()}, nil
}

// setLogLevel serves PUT /v1/logs/level: this node's level, a named
// node's (node=ID) or every node's (node=all). The level is not
// persisted: a restart goes back to log.level.
func (h *handler) setLogLevel(w http.ResponseWriter, r *http.Request) error {
	var req api.LogLevelRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if _, err := journal.ParseLevel(req.Level); err != nil {
		return kms.Invalidf("%v", err)
	}
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	node := r.URL.Query().Get("node")
	by := string(callerOf(r.Context()).Identity)
	var out api.LogLevelResponses
	switch {
	case node == "" || node == h.journal.Node() || h.logPeers == nil && node == "all":
		resp, err := h.setLevel(req.Level, by)
		if err != nil {
			return err
		}
		out.Nodes = append(out.Nodes, resp)
	case h.logPeers == nil:
		return fmt.Errorf("%w: %s", errNotMember, node)
	case node != "all":
		var resp api.LogLevelResponse
		if err := h.logPeers.Ask(r.Context(), node, levelMethod, levelAsk{Level: req.Level, By: by}, &resp); err != nil {
			return err
		}
		out.Nodes = append(out.Nodes, resp)
	default:
		for _, a := range h.logPeers.AskAll(r.Context(), levelMethod, levelAsk{Level: req.Level, By: by}, askLogsTimeout) {
			resp := api.LogLevelResponse{Node: a.NodeID}
			if a.Err != nil {
				resp.Error = a.Err.Error()
			} else if err := json.Unmarshal(a.Result, &resp); err != nil {
				resp.Error = err.Error()
			}
			out.Nodes = append(out.Nodes, resp)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// kesErrorLog serves KES's GET /v1/log/error: this node's error and
// warning records from now on, as {"message": ...} lines.
func (h *handler) kesErrorLog(w http.ResponseWriter, r *http.Request) error {
	return h.kesStream(w, r, false, func(v any) any {
		rec, ok := v.(api.LogRecord)
		if !ok {
			return nil
		}
		return api.KESErrorLogEvent{Message: formatKESMessage(rec)}
	})
}

// kesAuditLog serves KES's GET /v1/log/audit: this node's audit records
// from now on, in KES's audit event shape.
func (h *handler) kesAuditLog(w http.ResponseWriter, r *http.Request) error {
	return h.kesStream(w, r, true, func(v any) any {
		rec, ok := v.(api.AuditRecord)
		if !ok {
			return nil
		}
		ip := rec.Remote
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		return api.KESAuditEvent{
			Time:     rec.Time,
			Request:  api.KESAuditRequest{IP: ip, Path: rec.Path, Identity: rec.Identity},
			Response: api.KESAuditResponse{StatusCode: rec.Status, Time: rec.Duration},
		}
	})
}

// kesStream follows this node's records from now on, as KES does.
func (h *handler) kesStream(w http.ResponseWriter, r *http.Request, audit bool, transform func(any) any) error {
	if err := h.authorizeLogs(r, audit, ""); err != nil {
		return err
	}
	q := logQuery{follow: true}
	last := h.journal.LastLog()
	if audit {
		last = h.journal.LastAudit()
	} else {
		q.filter.Level = "warn"
	}
	lw := newLineWriter(w, true)
	if err := lw.start(); err != nil {
		return nil
	}
	s := &logStream{h: h, q: q, audit: audit, out: lw, silent: map[string]bool{},
		cursor: map[string]uint64{h.journal.Node(): last}, transform: transform}
	s.run(r.Context())
	return nil
}

// formatKESMessage renders a log record as one line of text, as KES's
// error log has it.
func formatKESMessage(r api.LogRecord) string {
	var b strings.Builder
	b.WriteString(r.Time.UTC().Format(time.RFC3339))
	b.WriteString(" " + r.Level + " " + r.Message)
	keys := slices.Sorted(maps.Keys(r.Fields))
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, r.Fields[k])
	}
	return b.String()
}
