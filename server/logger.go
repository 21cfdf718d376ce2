package server

import (
	"golang.org/x/term"

	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
)

// NewLogger returns the logger a node logs with: JSON lines for format
// "json"; otherwise human-readable text (lmittmann/tint) that is coloured
// only when w is a terminal and the NO_COLOR environment variable is unset.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.Level}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:      c.Level,
		TimeFormat: time.DateTime,
		NoColor:    !colorful(w),
	}))
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
