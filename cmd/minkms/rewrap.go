package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/minkms/minkms/api"
)

// rewrapLine is a JSON line of key rewrap: a ciphertext and its context,
// both base64 as in the API.
type rewrapLine struct {
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context,omitempty"`
}

// rewrapMaxLine is the longest input line: a ciphertext of 1 MiB in base64
// with its context.
const rewrapMaxLine = 3 << 20

// rewrapBatchBytes bounds the ciphertexts of one batch, well under the
// server's batch body limit.
const rewrapBatchBytes = 4 << 20

func (c *cli) keyRewrap(enclave enclaveOf) *cobra.Command {
	var file string
	var size int
	cmd := &cobra.Command{
		Use:   "rewrap NAME",
		Short: "Re-encrypt ciphertexts under the newest key version",
		Long: `Read ciphertexts of a key, one per line, from standard input or --file, and
write each one re-encrypted under the key's newest version (after a
rotation) in the newest format, one per line in the same order. The
plaintexts never leave the server. It needs the key:rewrap action.

A line is either a standard base64 ciphertext, bound to --context, or a JSON
object {"ciphertext": "<base64>", "context": "<base64>"}; the output line
has the same form (with --json every output line is a JSON object). Empty
lines are copied. The ciphertexts go to the
server in batches of --batch. On the first ciphertext that cannot be
rewrapped, the command stops with its line number; the lines before it
have been written. On a terminal, the progress is shown on standard error.`,
		Example: `  minkms key rotate my-key
  minkms key rewrap my-key --file ciphertexts.txt > rewrapped.txt
  cat dek.jsonl | minkms key rewrap my-key > dek-new.jsonl`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&file, "file", "", "read the ciphertexts from this file instead of standard input")
	cmd.Flags().IntVar(&size, "batch", api.MaxBatchItems, fmt.Sprintf("ciphertexts per request, 1 to %d", api.MaxBatchItems))
	assoc := contextFlag(cmd)
	out := new(output)
	cmd.Flags().BoolVar(&out.json, "json", false, "write every line as a JSON object {\"ciphertext\", \"context\"}")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if size < 1 || size > api.MaxBatchItems {
			return fmt.Errorf("--batch must be 1 to %d, not %d", api.MaxBatchItems, size)
		}
		in, total := c.stdin, int64(0)
		if file != "" {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil {
				total = st.Size()
			}
			in = f
		}
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		r := &rewrapper{
			cmd: cmd, e: e, name: args[0], context: contextBytes(*assoc), size: size, allJSON: out.json,
			out: bufio.NewWriter(c.stdout), start: time.Now(), total: total,
		}
		if isTerminal(c.stderr) {
			r.progress = c.stderr
		}
		err = r.run(in)
		if ferr := r.out.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write the output: %w", ferr)
		}
		if r.progress != nil {
			fmt.Fprintln(r.progress)
		}
		return err
	}
	return cmd
}

// isTerminal reports whether w is a terminal, coloured or not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// rewrapper sends the lines of key rewrap in batches.
type rewrapper struct {
	cmd     *cobra.Command
	e       *api.Enclave
	name    string
	context []byte
	size    int
	allJSON bool // write JSON lines whatever the input
	out     *bufio.Writer

	lines   []pendingLine
	items   []api.BatchItem
	pending int // bytes of ciphertext in items

	done     int
	read     int64
	total    int64 // the input's size, 0 if not known
	start    time.Time
	progress io.Writer // nil: no progress
	lastShow time.Time
}

// pendingLine is an input line waiting for its batch: its number, whether
// it was JSON, and its item (-1 for an empty line).
type pendingLine struct {
	no   int
	json bool
	item int
}

func (r *rewrapper) run(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), rewrapMaxLine)
	no := 0
	for sc.Scan() {
		no++
		line := bytes.TrimSpace(sc.Bytes())
		r.read += int64(len(sc.Bytes()) + 1)
		if len(line) == 0 {
			r.lines = append(r.lines, pendingLine{no: no, item: -1})
			continue
		}
		it := api.BatchItem{Op: api.BatchRewrap, Name: r.name}
		isJSON := line[0] == '{'
		if isJSON {
			var l rewrapLine
			if err := json.Unmarshal(line, &l); err != nil || len(l.Ciphertext) == 0 {
				return fmt.Errorf("line %d: want a base64 ciphertext or a JSON object with \"ciphertext\" and \"context\"", no)
			}
			it.Ciphertext, it.Context = l.Ciphertext, l.Context
		} else {
			ct, err := base64.StdEncoding.DecodeString(string(line))
			if err != nil {
				return fmt.Errorf("line %d: the ciphertext is not standard base64", no)
			}
			it.Ciphertext, it.Context = ct, r.context
		}
		r.lines = append(r.lines, pendingLine{no: no, json: isJSON, item: len(r.items)})
		r.items = append(r.items, it)
		r.pending += len(it.Ciphertext) + len(it.Context)
		if len(r.items) >= r.size || r.pending >= rewrapBatchBytes {
			if err := r.flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", no+1, rewrapMaxLine)
		}
		return fmt.Errorf("read the ciphertexts: %w", err)
	}
	return r.flush()
}

// flush rewraps the pending items and writes their lines.
func (r *rewrapper) flush() error {
	var res []api.BatchResult
	if len(r.items) > 0 {
		var err error
		if res, err = r.e.Batch(r.cmd.Context(), r.items); err != nil {
			return err
		}
	}
	for _, l := range r.lines {
		if l.item < 0 {
			r.out.WriteByte('\n')
			continue
		}
		x := res[l.item]
		if err := x.Err(); err != nil {
			return fmt.Errorf("line %d: %w", l.no, err)
		}
		if l.json || r.allJSON {
			b, err := json.Marshal(rewrapLine{Ciphertext: x.Ciphertext, Context: r.items[l.item].Context})
			if err != nil {
				return err
			}
			r.out.Write(b)
		} else {
			r.out.WriteString(base64.StdEncoding.EncodeToString(x.Ciphertext))
		}
		r.out.WriteByte('\n')
		r.done++
	}
	r.lines, r.items, r.pending = r.lines[:0], r.items[:0], 0
	r.show()
	return nil
}

// show updates the progress line at most ten times a second.
func (r *rewrapper) show() {
	if r.progress == nil || time.Since(r.lastShow) < 100*time.Millisecond {
		return
	}
	r.lastShow = time.Now()
	rate := float64(r.done) / max(time.Since(r.start).Seconds(), 1e-3)
	if r.total > 0 {
		pct := min(100, 100*float64(r.read)/float64(r.total))
		const width = 30
		bar := bytes.Repeat([]byte{'#'}, int(pct/100*width))
		bar = append(bar, bytes.Repeat([]byte{'.'}, width-len(bar))...)
		fmt.Fprintf(r.progress, "\r[%s] %5.1f%%  %d rewrapped  %.0f/s ", bar, pct, r.done, rate)
		return
	}
	fmt.Fprintf(r.progress, "\r%d rewrapped  %.0f/s ", r.done, rate)
}
