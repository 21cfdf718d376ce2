package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The log routes: GET /v1/logs (the node's log records), GET /v1/logs/audit
// (its audit trail) and PUT /v1/logs/level. Both GET routes answer with
// JSON lines (application/x-ndjson), one LogRecord or AuditRecord per line,
// flushed per record when following. A line whose Notice is set is not a
// record but says something about the stream: a node that did not answer,
// or records lost before the reader got them.

// Notices: the Notice of a stream line that is not a record.
const (
	NoticeUnreachable = "unreachable" // the node did not answer; Message says why
	NoticeReachable   = "reachable"   // the node answers again after NoticeUnreachable
	NoticeLost        = "lost"        // Lost records of the node were dropped before this reader got them
)

// Levels of log records, as LogRecord.Level has them.
const (
	LevelDebug = "DEBUG"
	LevelInfo  = "INFO"
	LevelWarn  = "WARN"
	LevelError = "ERROR"
)

// LogRecord is one record of a node's log: the time, the node that logged
// it and its sequence number there (one counter per node and stream,
// starting at 1 when the node starts), the level, the message and the
// structured fields. Repeated counts the identical records of the same
// second that were folded into this one.
type LogRecord struct {
	Time     time.Time      `json:"time"`
	Node     string         `json:"node"`
	Seq      uint64         `json:"seq,omitempty"`
	Level    string         `json:"level,omitempty"`
	Message  string         `json:"msg"`
	Fields   map[string]any `json:"fields,omitempty"`
	Repeated int            `json:"repeated,omitempty"`

	Notice string `json:"notice,omitempty"` // "" for a record, else one of the Notice constants
	Lost   uint64 `json:"lost,omitempty"`   // with NoticeLost: how many records
}

// AuditRecord is one API request as a node's audit trail has it. It never
// holds a request or response body: no plaintext, key material,
// ciphertext, context or API key.
type AuditRecord struct {
	Time      time.Time     `json:"time"` // when the request arrived
	Node      string        `json:"node"`
	Seq       uint64        `json:"seq,omitempty"`
	RequestID string        `json:"request_id,omitempty"`
	Identity  string        `json:"identity,omitempty"` // "" if the client sent no certificate
	Enclave   string        `json:"enclave,omitempty"`
	Action    string        `json:"action,omitempty"` // "key:create", "log:read", ...
	Object    string        `json:"object,omitempty"` // the key, identity, policy or enclave acted on
	Method    string        `json:"method,omitempty"`
	Path      string        `json:"path,omitempty"`
	Status    int           `json:"status,omitempty"`
	Duration  time.Duration `json:"duration,omitempty"` // nanoseconds
	Remote    string        `json:"remote,omitempty"`   // the client's address, host:port
	// Batch counts the items of a batch request per action
	// ({"key:encrypt": 100}); a denied item has a record of its own.
	Batch map[string]int `json:"batch,omitempty"`

	Notice  string `json:"notice,omitempty"` // as LogRecord.Notice
	Message string `json:"msg,omitempty"`    // with a Notice: what happened
	Lost    uint64 `json:"lost,omitempty"`
}

// LogLevelRequest is the body of PUT /v1/logs/level.
type LogLevelRequest struct {
	Level string `json:"level"` // debug, info, warn or error
}

// LogLevelResponse is one node's answer to PUT /v1/logs/level: the level
// it logs at from now on, or why it could not be set.
type LogLevelResponse struct {
	Node  string `json:"node"`
	Level string `json:"level,omitempty"`
	Error string `json:"error,omitempty"`
}

// LogLevelResponses is the answer of PUT /v1/logs/level.
type LogLevelResponses struct {
	Nodes []LogLevelResponse `json:"nodes"`
}

// KESErrorLogEvent is one line of KES's GET /v1/log/error.
type KESErrorLogEvent struct {
	Message string `json:"message"`
}

// KESAuditEvent is one line of KES's GET /v1/log/audit.
type KESAuditEvent struct {
	Time     time.Time        `json:"time"`
	Request  KESAuditRequest  `json:"request"`
	Response KESAuditResponse `json:"response"`
}

// KESAuditRequest is the request part of a KESAuditEvent.
type KESAuditRequest struct {
	IP       string `json:"ip,omitempty"`
	Path     string `json:"path"`
	Identity string `json:"identity,omitempty"`
}

// KESAuditResponse is the response part of a KESAuditEvent: the status
// and how long the request took, in nanoseconds.
type KESAuditResponse struct {
	StatusCode int           `json:"code"`
	Time       time.Duration `json:"time"`
}

// LogQuery selects the records of Client.Logs and Client.AuditLogs.
type LogQuery struct {
	Node    string    // "" for the node that answers, a node id, or "all" for every node
	Level   string    // the lowest level: debug, info, warn or error ("" for all); logs only
	Since   time.Time // zero: no bound
	Until   time.Time // zero: no bound
	Message string    // a substring of the message, in any case
	Limit   int       // the last Limit records (of all nodes together); 0 for all the nodes hold
	Follow  bool      // keep the stream open for new records
	// After resumes a stream: per node, the last sequence number read;
	// those nodes send only what came after it.
	After map[string]uint64
}

func (q LogQuery) query() string {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("node", q.Node)
	set("level", q.Level)
	set("message", q.Message)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	if len(q.After) > 0 {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(q.After)) {
			parts = append(parts, id+":"+strconv.FormatUint(q.After[id], 10))
		}
		v.Set("after", strings.Join(parts, ","))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Stream reads the JSON lines of a log route, one record at a time.
// Close it when done; it is not safe for concurrent use.
type Stream[T any] struct {
	endpoint string
	body     io.ReadCloser
	dec      *json.Decoder
	cancel   context.CancelFunc
}

// Next returns the next line. At the end of the stream it returns io.EOF;
// when the connection breaks, another error.
func (s *Stream[T]) Next() (T, error) {
	var v T
	if err := s.dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return v, io.EOF
		}
		return v, fmt.Errorf("api: reading the log stream from %s: %w", s.endpoint, err)
	}
	return v, nil
}

// Endpoint returns the endpoint that serves the stream.
func (s *Stream[T]) Endpoint() string { return s.endpoint }

// Close ends the stream.
func (s *Stream[T]) Close() error {
	s.cancel()
	return s.body.Close()
}

// Logs returns the log records q selects, as a stream of JSON lines:
// records, and lines with a Notice (a node that did not answer, records
// lost). Only cluster admins and identities whose policy allows log:read
// may read them; anyone else gets ErrNotAllowed.
func (c *Client) Logs(ctx context.Context, q LogQuery) (*Stream[LogRecord], error) {
	return openStream[LogRecord](ctx, c, "/v1/logs"+q.query())
}

// AuditLogs returns the audit records q selects, as Logs does. It needs
// audit:read.
func (c *Client) AuditLogs(ctx context.Context, q LogQuery) (*Stream[AuditRecord], error) {
	q.Level = ""
	return openStream[AuditRecord](ctx, c, "/v1/logs/audit"+q.query())
}

// SetLogLevel sets the level a node logs at until it restarts: node "" is
// the node that answers, a node id that node, "all" every node. Only a
// cluster admin may.
func (c *Client) SetLogLevel(ctx context.Context, level, node string) (*LogLevelResponses, error) {
	body, err := marshal(LogLevelRequest{Level: level})
	if err != nil {
		return nil, err
	}
	path := "/v1/logs/level"
	if node != "" {
		path += "?node=" + url.QueryEscape(node)
	}
	var v LogLevelResponses
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// openStream opens a log stream at the first endpoint that answers,
// starting at the last one that did: a transport error or a 503 moves on,
// any other error answer is final. The answer's header must arrive within
// the client's timeout; the stream itself has none but ctx.
func openStream[T any](ctx context.Context, c *Client, path string) (*Stream[T], error) {
	n := len(c.endpoints)
	idx := int(c.last.Load())
	var errs []error
	for tried := 0; tried < n; tried, idx = tried+1, (idx+1)%n {
		endpoint := c.endpoints[idx]
		sctx, cancel := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(sctx, http.MethodGet, endpoint+path, nil)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("api: build request: %w", err)
		}
		req.Header.Set("Accept", "application/x-ndjson")
		timer := time.AfterFunc(c.timeout, cancel)
		resp, err := c.http.Do(req)
		stopped := timer.Stop()
		if err != nil || !stopped {
			cancel()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("api: GET %s: %w", routeOf(path), ctx.Err())
			}
			if err == nil {
				resp.Body.Close()
				err = context.DeadlineExceeded
			}
			errs = append(errs, fmt.Errorf("%s: %w", endpoint, err))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorMessage*16))
			resp.Body.Close()
			cancel()
			err := decodeError(resp.StatusCode, data)
			if resp.StatusCode == http.StatusServiceUnavailable && tried < n-1 {
				errs = append(errs, fmt.Errorf("%s: %w", endpoint, err))
				continue
			}
			return nil, err
		}
		c.last.Store(int64(idx))
		return &Stream[T]{endpoint: endpoint, body: resp.Body, dec: json.NewDecoder(resp.Body), cancel: cancel}, nil
	}
	return nil, fmt.Errorf("api: GET %s: no endpoint answered: %w", routeOf(path), errors.Join(errs...))
}
