package api

import (
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
