package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/minkms/minkms/api"
)

func init() {
	extraCommands = append(extraCommands, (*cli).logsCommand, (*cli).logLevelCommand)
}

// logsFlags are the flags of minkms logs.
type logsFlags struct {
	node, level, since, until, message string
	all, follow, audit                 bool
	limit                              int
}

func (c *cli) logsCommand() *cobra.Command {
	var f logsFlags
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the log or the audit trail of one node or of every node",
		Long: `Show the log records of a node, or with --audit its audit trail (one record
per API request: who, what, on which object, the status), from the records
the node keeps in memory (log.buffer; WARN and above are kept apart, so that
a flood of INFO lines does not push them out).

Without --node or --all the node that answers first is shown; --node ID
shows that node and --all every node of the cluster, merged by time, each
line tagged with its node. A node that does not answer is named on standard
error and the others are shown all the same.

--since and --until take a time (RFC 3339, "2026-05-01 14:00" or a date in
local time), a duration back from now (90m, 2h, 7d) or "today". --level
shows that level and above. --message keeps the records whose message
contains the text, in any case. -n keeps the last N records of all those
selected (with --follow, 10 unless given).

--follow keeps showing new records until Ctrl-C. If the connection breaks,
the command connects again (to another --server if needed) and goes on
after the last record it showed of each node: nothing twice, and nothing
missed that the nodes still hold. Records a node dropped before they could
be shown are reported.

It needs a cluster admin API key, or an identity whose policy allows
log:read (--audit: audit:read) on the node ids (or "*").`,
		Example: `  # every certificate warning of the whole cluster in the last day
  minkms logs --all --level warn --message certificate --since 24h

  # follow node n2's log from now on
  minkms logs --node n2 -f

  # the last 50 denied or failed requests of every node, as JSON lines
  minkms logs --all --audit -n 50 --json

  # today's errors of the node that answers
  minkms logs --level error --since today`,
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "show the node of this `ID`")
	fl.BoolVar(&f.all, "all", false, "show every node of the cluster, merged by time")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep showing new records until Ctrl-C")
	fl.StringVarP(&f.level, "level", "l", "", "show this `LEVEL` and above: debug, info, warn or error")
	fl.StringVar(&f.since, "since", "", "show records from this `TIME` on (2h, today, 2026-05-01T14:00:00Z)")
	fl.StringVar(&f.until, "until", "", "show records up to this `TIME`")
	fl.IntVarP(&f.limit, "lines", "n", 0, "show the last `N` records (all, or 10 with --follow)")
	fl.StringVarP(&f.message, "message", "m", "", "show records whose message contains `TEXT`")
	fl.BoolVar(&f.audit, "audit", false, "show the audit trail instead of the log")
	cmd.MarkFlagsMutuallyExclusive("node", "all")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		q, err := f.query(time.Now(), cmd.Flags().Changed("lines"))
		if err != nil {
			return err
		}
		if f.audit && f.level != "" {
			return errors.New("--level applies to the log, not to --audit")
		}
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		return c.showLogs(cmd.Context(), client, q, f.audit, out.json)
	}
	return cmd
}

// query turns the flags into a LogQuery.
func (f logsFlags) query(now time.Time, limitSet bool) (api.LogQuery, error) {
	q := api.LogQuery{Node: f.node, Level: f.level, Message: f.message, Limit: f.limit, Follow: f.follow}
	if f.all {
		q.Node = "all"
	}
	if f.limit < 0 {
		return q, fmt.Errorf("-n %d: want a number of records", f.limit)
	}
	if f.follow && !limitSet {
		q.Limit = 10
	}
	var err error
	if q.Since, err = parseWhen(f.since, now); err != nil {
		return q, fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = parseWhen(f.until, now); err != nil {
		return q, fmt.Errorf("--until: %w", err)
	}
	return q, nil
}

// parseWhen reads a time as --since and --until take it.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	case "today":
		y, m, d := now.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, now.Location()), nil
	case "yesterday":
		y, m, d := now.Date()
		return time.Date(y, m, d-1, 0, 0, 0, 0, now.Location()), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d.Abs()), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time (2026-05-01T14:00:00Z, \"2026-05-01 14:00\"), a duration back from now (2h, 7d) or today", s)
}

// showLogs prints the stream; with q.Follow it reconnects after a broken
// connection and resumes after the last record of each node.
func (c *cli) showLogs(ctx context.Context, client *api.Client, q api.LogQuery, audit, asJSON bool) error {
	p := &logPrinter{c: c, style: styleFor(c.stdout), json: asJSON}
	cursor := map[string]uint64{}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			q.After = maps.Clone(cursor)
			if !c.sleep(ctx, min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)) {
				return nil
			}
		}
		err := c.readLogs(ctx, client, q, audit, p, cursor)
		switch {
		case ctx.Err() != nil:
			return nil // Ctrl-C
		case err == nil && !q.Follow:
			return nil
		case err == nil:
			err = errors.New("the node ended the stream")
		}
		if _, refused := errors.AsType[*api.Error](err); refused || !q.Follow {
			return err
		}
		fmt.Fprintf(c.stderr, "%s %v; connecting again\n", p.style.red("minkms:"), err)
	}
}

func (c *cli) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readLogs prints one stream until it ends, moving cursor along.
func (c *cli) readLogs(ctx context.Context, client *api.Client, q api.LogQuery, audit bool, p *logPrinter, cursor map[string]uint64) error {
	if audit {
		s, err := client.AuditLogs(ctx, q)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			r, err := s.Next()
			if err != nil {
				return endOfStream(err)
			}
			if r.Notice == "" && r.Seq <= cursor[r.Node] {
				continue // seen before the connection broke
			}
			if err := p.audit(r); err != nil {
				return err
			}
			if r.Notice == "" {
				cursor[r.Node] = r.Seq
			}
		}
	}
	s, err := client.Logs(ctx, q)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		r, err := s.Next()
		if err != nil {
			return endOfStream(err)
		}
		if r.Notice == "" && r.Seq <= cursor[r.Node] {
			continue
		}
		if err := p.log(r); err != nil {
			return err
		}
		if r.Notice == "" {
			cursor[r.Node] = r.Seq
		}
	}
}

func endOfStream(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// logPrinter prints records for people or as JSON lines.
type logPrinter struct {
	c     *cli
	style style
	json  bool
}

func (p *logPrinter) notice(node, kind, msg string) {
	fmt.Fprintf(p.c.stderr, "%s %s\n", p.style.yellow("minkms: "+node+":"), msg)
}

func (p *logPrinter) log(r api.LogRecord) error {
	if p.json {
		return json.NewEncoder(p.c.stdout).Encode(r) // JSON lines
	}
	if r.Notice != "" {
		p.notice(r.Node, r.Notice, r.Message)
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", r.Time.Local().Format("2006-01-02 15:04:05.000"), r.Node, p.level(r.Level), r.Message)
	for _, k := range slices.Sorted(maps.Keys(r.Fields)) {
		fmt.Fprintf(&b, " %s=%s", p.style.dim(k), fieldText(r.Fields[k]))
	}
	if r.Repeated > 0 {
		fmt.Fprintf(&b, " (repeated %d more times)", r.Repeated)
	}
	_, err := fmt.Fprintln(p.c.stdout, b.String())
	return err
}

func (p *logPrinter) audit(r api.AuditRecord) error {
	if p.json {
		return json.NewEncoder(p.c.stdout).Encode(r) // JSON lines
	}
	if r.Notice != "" {
		p.notice(r.Node, r.Notice, r.Message)
		return nil
	}
	status := strconv.Itoa(r.Status)
	if r.Status >= 400 {
		status = p.style.red(status)
	}
	_, err := fmt.Fprintf(p.c.stdout, "%s %s %s %s %s %s %s %s %s\n",
		r.Time.Local().Format("2006-01-02 15:04:05.000"), r.Node, status, orDash(r.Action), orDash(r.Enclave),
		orDash(r.Object), orDash(r.Identity), r.Duration.Round(time.Microsecond), orDash(r.Remote))
	return err
}

// level colours a level name: red errors, yellow warnings, dim debug.
func (p *logPrinter) level(l string) string {
	text := fmt.Sprintf("%-5s", l)
	switch {
	case strings.HasPrefix(l, "ERROR"):
		return p.style.red(text)
	case strings.HasPrefix(l, "WARN"):
		return p.style.yellow(text)
	case strings.HasPrefix(l, "DEBUG"):
		return p.style.dim(text)
	}
	return p.style.green(text)
}

// fieldText renders a field value, quoted if it has spaces.
func fieldText(v any) string {
	s := fmt.Sprint(v)
	if strings.ContainsAny(s, " \t\n\"=") || s == "" {
		return strconv.Quote(s)
	}
	return s
}

func (c *cli) logLevelCommand() *cobra.Command {
	var (
		node string
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "log-level LEVEL",
		Short: "Change the log level of a node or of every node until it restarts",
		Long: `Set the level a node logs at (debug, info, warn or error) at once, without a
restart; the node that answers by default, --node ID that node, --all every
node. The change is not persisted: a restart goes back to log.level of the
config file. It needs a cluster admin API key.`,
		Example: `  minkms log-level debug --all
  minkms log-level info --node n2`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&node, "node", "", "change the node of this `ID`")
	cmd.Flags().BoolVar(&all, "all", false, "change every node")
	cmd.MarkFlagsMutuallyExclusive("node", "all")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if all {
			node = "all"
		}
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		resp, err := client.SetLogLevel(cmd.Context(), args[0], node)
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, resp)
		}
		var failed []string
		t := newTable(c.stdout, "NODE", "LEVEL")
		for _, n := range resp.Nodes {
			if n.Error != "" {
				t.row(n.Node, "not changed: "+n.Error)
				failed = append(failed, n.Node)
				continue
			}
			t.row(n.Node, n.Level)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(failed) > 0 {
			return fmt.Errorf("the level of %s was not changed", strings.Join(failed, ", "))
		}
		return nil
	}
	return cmd
}
