package main

import (
	"golang.org/x/term"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// output prints what a command shows: one JSON document with --json, text
// for people otherwise.
type output struct {
	json bool
}

// jsonFlag adds --json to cmd and returns the output it selects.
func jsonFlag(cmd *cobra.Command) *output {
	o := new(output)
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON document, for programs")
	return o
}

// writeJSON writes v as an indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes aligned columns; the header is bold on a terminal.
type table struct {
	w      io.Writer
	buf    bytes.Buffer
	tw     *tabwriter.Writer
	header bool
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w, header: len(header) > 0}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	if t.header {
		fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	}
	return t
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

// flush writes the table. The header is styled after alignment so that
// colour codes take no width.
func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	text := t.buf.String()
	if t.header {
		head, rest, _ := strings.Cut(text, "\n")
		text = styleFor(t.w).bold(strings.TrimRight(head, " ")) + "\n" + rest
	}
	_, err := io.WriteString(t.w, text)
	return err
}

// when formats a time for people: local time to the second, or "-".
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// createdBy formats when and by whom something was created.
func createdBy(t time.Time, by string) string {
	if t.IsZero() && by == "" {
		return "-"
	}
	return when(t) + " by " + orDash(by)
}

// orDash returns s, or "-" if it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// style colours text, or not: colour is used only when the output is a
// terminal and NO_COLOR is unset or empty (https://no-color.org).
type style struct{ color bool }

func styleFor(w io.Writer) style { return style{color: colorEnabled(w)} }

// colorEnabled reports whether w is a terminal that may be coloured.
func colorEnabled(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	// A real terminal, not merely a character device such as /dev/null.
	return term.IsTerminal(int(f.Fd()))
}

func (s style) wrap(code, text string) string {
	if !s.color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) bold(text string) string  { return s.wrap("1", text) }
func (s style) red(text string) string   { return s.wrap("31", text) }
func (s style) green(text string) string { return s.wrap("32", text) }

func (s style) yellow(text string) string { return s.wrap("33", text) }
func (s style) dim(text string) string    { return s.wrap("2", text) }
