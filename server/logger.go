package server

import (
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
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
