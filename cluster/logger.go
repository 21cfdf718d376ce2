package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogAdapter sends raft's hclog output to the node's slog.Logger, so that
// raft logs in the same format and to the same place as everything else.
type hclogAdapter struct {
	logger  *slog.Logger
	name    string
	implied []any
	level   *atomic.Int32 // an hclog.Level; shared by loggers derived with With and Named
	// demote, if set, may lower the level of a message (see
	// demoteLocalClose).
	demote func(level hclog.Level, msg string, args []any) hclog.Level
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(logger *slog.Logger) *hclogAdapter {
	level := new(atomic.Int32)
	level.Store(int32(hclog.Trace)) // let the slog handler decide
	return &hclogAdapter{logger: logger.With(slog.String("component", "raft")), level: level}
}

// demoteLocalClose lowers to debug what raft's network transport logs as an
// error when a read fails because this node closed the connection itself:
// the transport was shut down, or the connection closed under the read.
// Both happen only while this node stops, once for every inbound
// connection, and say nothing an operator must act on. A connection the
// other node closed or broke keeps its level.
func demoteLocalClose(level hclog.Level, msg string, args []any) hclog.Level {
	if level < hclog.Warn || msg != "failed to decode incoming command" {
		return level
	}
	for _, v := range args {
		if err, ok := v.(error); ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, raft.ErrTransportShutdown)) {
			return hclog.Debug
		}
	}
	return level
}

// peerFailures are what raft logs when a peer does not answer it.
var peerFailures = map[string]bool{
	"failed to heartbeat to":                           true,
	"failed to appendEntries to":                       true,
	"failed to pipeline appendEntries":                 true,
	"failed to start pipeline replication to":          true,
	"failed to contact":                                true,
	"failed to contact quorum of nodes, stepping down": true,
}

// demoteWhileStopping returns a demote function that lowers to debug
// what raft logs about peers that do not answer, once stopping is set:
// when a whole cluster stops (Ctrl-C on a development cluster, a
// shutdown of every node), each node's peers go away under it while it
// stops itself. While the node runs, a peer that does not answer is
// still a warning or an error.
func demoteWhileStopping(stopping *atomic.Bool) func(hclog.Level, string, []any) hclog.Level {
	return func(level hclog.Level, msg string, _ []any) hclog.Level {
		if level >= hclog.Warn && stopping.Load() && peerFailures[msg] {
			return hclog.Debug
		}
		return level
	}
}

// slogLevel maps hclog levels onto slog's. Trace sits below Debug.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	if l == hclog.Off {
		return false
	}
	if min := hclog.Level(a.level.Load()); min != hclog.NoLevel && l != hclog.NoLevel && l < min {
		return false
	}
	return a.logger.Enabled(context.Background(), slogLevel(l))
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if a.demote != nil {
		level = a.demote(level, msg, args)
	}
	if !a.enabled(level) {
		return
	}
	if a.name != "" {
		args = append([]any{slog.String("logger", a.name)}, args...)
	}
	a.logger.Log(context.Background(), slogLevel(level), msg, hclogArgs(args)...)
}

// hclogArgs renders the values that only hclog knows how to print:
// hclog.Fmt (a format and its arguments) and hclog.Hex/Octal/Binary.
func hclogArgs(args []any) []any {
	out := make([]any, len(args))
	for i, v := range args {
		switch v := v.(type) {
		case hclog.Format:
			if len(v) > 0 {
				if format, ok := v[0].(string); ok {
					out[i] = fmt.Sprintf(format, v[1:]...)
					continue
				}
			}
			out[i] = fmt.Sprint([]any(v)...)
		case hclog.Hex:
			out[i] = fmt.Sprintf("0x%x", int(v))
		case hclog.Octal:
			out[i] = fmt.Sprintf("0%o", int(v))
		case hclog.Binary:
			out[i] = fmt.Sprintf("0b%b", int(v))
		default:
			out[i] = v
		}
	}
	return out
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	b := *a
	b.logger = a.logger.With(args...)
	b.implied = append(append([]any(nil), a.implied...), args...)
	return &b
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	b := *a
	if a.name != "" {
		name = a.name + "." + name
	}
	b.name = name
	return &b
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.name = name
	return &b
}

func (a *hclogAdapter) SetLevel(level hclog.Level) { a.level.Store(int32(level)) }
func (a *hclogAdapter) GetLevel() hclog.Level      { return hclog.Level(a.level.Load()) }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{a: a, level: hclog.Info}
	if opts != nil {
		w.infer = opts.InferLevels
		if opts.ForceLevel != hclog.NoLevel {
			w.level, w.infer = opts.ForceLevel, false
		}
	}
	return w
}

// stdWriter logs each line written by a standard library logger.
type stdWriter struct {
	a     *hclogAdapter
	level hclog.Level
	infer bool
}

func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg, level := string(line), w.level
		if w.infer {
			msg, level = inferLevel(msg, level)
		}
		w.a.Log(level, msg)
	}
	return len(p), nil
}

// inferLevel reads a "[WARN] ..." style prefix.
func inferLevel(msg string, fallback hclog.Level) (string, hclog.Level) {
	for prefix, level := range map[string]hclog.Level{
		"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info,
		"[WARN]": hclog.Warn, "[ERR]": hclog.Error, "[ERROR]": hclog.Error,
	} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return strings.TrimSpace(rest), level
		}
	}
	return msg, fallback
}
