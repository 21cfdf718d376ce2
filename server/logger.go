package server

import (
	"context"

	"golang.org/x/term"

	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"

	"github.com/minkms/minkms/server/journal"
)

// NewLogger returns the logger a node logs with. Its records go through
// the node's journal (the in-memory rings that the log API reads, at a
// level the API can change) to w: JSON lines for format "json"; on a
// terminal, coloured and aligned text (lmittmann/tint) unless NO_COLOR is
// set; otherwise plain key=value text, as journald wants it.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	level := new(slog.LevelVar)
	level.Set(c.Level)
	j := journal.New(outputHandler(w, c.Format), journal.Options{Level: level, Records: c.Buffer, Bytes: c.BufferBytes})
	return j.Logger()
}

// everything lets the output handler write whatever the journal passes:
// the journal's level decides.
const everything = slog.Level(-100)

// outputHandler is the handler that writes the node's log to w.
func outputHandler(w io.Writer, format string) slog.Handler {
	switch {
	case format == "json":
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: everything})
	case colorful(w):
		return tint.NewHandler(w, &tint.Options{Level: everything, TimeFormat: time.DateTime})
	default:
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: everything})
	}
}

// journalOf returns the journal that logger feeds, or a new one in front
// of logger's handler if it feeds none (a logger a program or test built
// itself), with the logger that feeds it.
func journalOf(logger *slog.Logger, c LogConfig) (*journal.Journal, *slog.Logger) {
	if h, ok := logger.Handler().(interface{ Journal() *journal.Journal }); ok {
		return h.Journal(), logger
	}
	// The level of the logger's own handler: the lowest it takes.
	level := new(slog.LevelVar)
	level.Set(slog.LevelError)
	for _, l := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if logger.Enabled(context.Background(), l) {
			level.Set(l)
			break
		}
	}
	j := journal.New(logger.Handler(), journal.Options{Level: level, Records: c.Buffer, Bytes: c.BufferBytes})
	return j, j.Logger()
}

// colorful reports whether w is a terminal that may be coloured.
func colorful(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" { // https://no-color.org
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// A real terminal, not merely a character device such as /dev/null.
	return term.IsTerminal(int(f.Fd()))
}
