package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

// The exit codes of 'cluster status --check', as monitoring plugins
// (Nagios, Icinga, Sensu) expect them. They replace the usual ones.
const (
	checkOK       = 0 // healthy, no warning
	checkWarning  = 1 // a warning finding, or not healthy without a critical one
	checkCritical = 2 // a critical finding
	checkUnknown  = 3 // the status could not be had: no node reachable, refused
)

// waitPollInterval is how often --wait-healthy asks again.
var waitPollInterval = 2 * time.Second

// exitError ends the command with code; err, if set, is printed as any
// error is. It lets a command choose its exit code, as --check does.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func (c *cli) clusterStatus() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of every member, its certificates and the findings",
		Long: `Show the cluster as the node that answers sees it: every member with its
addresses, raft role (* marks the leader), whether it is reachable, how long
ago it heard from the leader, its applied index, the expiry of its
certificate (as a date and as "in 36h") and the age of its report; then
the findings, most severe first: certificates that expired or expire
soon, SAN and CA mismatches, failing reloads, stale reports, unreachable
members, clock skew, and the moment consensus is at risk.

Any node answers for the whole cluster: each node reports its certificates
into the cluster state, and the node that answers probes every other one.
docs/monitoring.md says what each finding means and what to do.

The cluster is healthy when every member is reachable and caught up, no
certificate reload fails and no finding is critical. Expiry warnings alone
do not make it unhealthy.

--check is for monitoring: it prints the status and exits with
  0  healthy, and no warning
  1  a warning finding, or not healthy without a critical finding
  2  a critical finding
  3  unknown: no node could be reached, or the request was refused
These codes replace the usual ones (1 local error, 2 refused).

--wait-healthy DURATION asks again every 2 seconds until the cluster is
healthy, printing what it waits for, and exits 0 once it is, 1 if it is
not within DURATION: run it between two nodes of a rolling update.

It needs a cluster admin API key.`,
		Example: `  minkms cluster status
  minkms cluster status --json
  minkms cluster status --check
  minkms cluster status --wait-healthy 5m`,
		Args: cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	var check bool
	var wait time.Duration
	cmd.Flags().BoolVar(&check, "check", false, "exit 0 healthy, 1 warning, 2 critical, 3 unknown (replaces the usual exit codes)")
	cmd.Flags().DurationVar(&wait, "wait-healthy", 0, "wait up to this long for the cluster to be healthy; exit 1 if it is not")
	cmd.MarkFlagsMutuallyExclusive("check", "wait-healthy")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			if check {
				return &exitError{code: checkUnknown, err: err}
			}
			return err
		}
		if wait > 0 {
			return c.waitHealthy(cmd.Context(), client, wait, out)
		}
		st, err := client.ClusterStatus(cmd.Context())
		if err != nil {
			if check {
				return &exitError{code: checkUnknown, err: err}
			}
			return err
		}
		if err := c.printClusterStatus(st, out); err != nil {
			return err
		}
		if check {
			if code := checkCode(st); code != checkOK {
				return &exitError{code: code}
			}
		}
		return nil
	}
	return cmd
}

// checkCode is the exit code of --check for st.
func checkCode(st *api.ClusterStatus) int {
	code := checkOK
	for _, f := range st.Findings {
		switch f.Severity {
		case api.SeverityCritical:
			return checkCritical
		case api.SeverityWarning:
			code = checkWarning
		}
	}
	if !st.Healthy {
		code = checkWarning
	}
	return code
}

// waitHealthy asks for the status until the cluster is healthy, then
// prints it. It prints what it waits for each time that changes, and gives
// up with exit code 1 once d has passed.
func (c *cli) waitHealthy(ctx context.Context, client *api.Client, d time.Duration, out *output) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	last := ""
	for {
		st, err := client.ClusterStatus(ctx)
		if err == nil && st.Healthy {
			fmt.Fprintf(c.stderr, "The cluster is healthy (after %s)\n", time.Since(start).Round(time.Second))
			return c.printClusterStatus(st, out)
		}
		why := ""
		switch {
		case err != nil && ctx.Err() != nil:
			// The deadline cut the request short: keep the last reason.
		case err != nil:
			why = "the status could not be had: " + err.Error()
		default:
			why = notHealthyReason(st)
		}
		if why != "" && why != last {
			fmt.Fprintf(c.stderr, "Waiting for the cluster to be healthy: %s\n", why)
			last = why
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &exitError{code: exitLocal, err: fmt.Errorf("the cluster did not become healthy within %s: %s", d, orDash(last))}
			}
			return ctx.Err()
		case <-time.After(waitPollInterval):
		}
	}
}

// notHealthyReason says in a line why st is not healthy: the warnings and
// critical findings, else the members that cannot be reached or lag.
func notHealthyReason(st *api.ClusterStatus) string {
	var why []string
	for _, f := range sortedFindings(st.Findings) {
		if f.Severity != api.SeverityInfo {
			why = append(why, f.Message)
		}
	}
	if len(why) == 0 {
		for _, m := range st.Members {
			if !m.Reachable {
				why = append(why, "node "+m.ID+" is unreachable")
			}
		}
	}
	if len(why) == 0 {
		why = append(why, "members are catching up with the leader")
	}
	return strings.Join(why, "; ")
}

// severityRank orders the severities, most urgent first.
func severityRank(s string) int {
	switch s {
	case api.SeverityCritical:
		return 0
	case api.SeverityWarning:
		return 1
	case api.SeverityInfo:
		return 2
	default:
		return 3
	}
}

func sortedFindings(fs []api.ClusterFinding) []api.ClusterFinding {
	fs = slices.Clone(fs)
	slices.SortStableFunc(fs, func(a, b api.ClusterFinding) int { return severityRank(a.Severity) - severityRank(b.Severity) })
	return fs
}

// printClusterStatus prints st as JSON, or as a table of the members, the
// findings and a verdict.
func (c *cli) printClusterStatus(st *api.ClusterStatus, out *output) error {
	if out.json {
		return writeJSON(c.stdout, st)
	}
	s := styleFor(c.stdout)
	now := st.EvaluatedAt
	if now.IsZero() {
		now = time.Now()
	}
	fmt.Fprintln(c.stdout, s.bold(fmt.Sprintf("Cluster status from %s at %s", orDash(st.Node), when(st.EvaluatedAt))))
	t := newTable(c.stdout, "ID", "PEER ADDRESS", "API ADDRESS", "ROLE", "REACHABLE", "LAST CONTACT", "APPLIED", "CERT EXPIRY", "REPORT AGE")
	for _, m := range st.Members {
		id := m.ID
		if m.Leader {
			id += " *"
		}
		role := orDash(m.Role)
		if !m.Voter {
			role += " (nonvoter)"
		}
		reachable, contact, applied := "yes", seconds(m.LastContactSeconds), fmt.Sprint(m.AppliedIndex)
		if !m.Reachable {
			reachable, contact, applied = "no", "-", "-"
		}
		age := "-"
		if m.Reported {
			age = seconds(m.ReportAgeSeconds)
		}
		// No colour inside the table: it would upset the alignment.
		t.row(id, m.PeerAddress, orDash(m.APIAddress), role, reachable, contact, applied, expiry(style{}, m.CertNotAfter, now), age)
	}
	if err := t.flush(); err != nil {
		return err
	}
	var b strings.Builder
	if !st.ConsensusAtRisk.IsZero() {
		fmt.Fprintf(&b, "\n%s\n", s.red("Consensus at risk from "+expiry(style{}, st.ConsensusAtRisk, now)))
	}
	if len(st.Findings) == 0 {
		fmt.Fprintf(&b, "\nNo findings.\n")
	} else {
		fmt.Fprintf(&b, "\n%s\n", s.bold("FINDINGS"))
		for _, f := range sortedFindings(st.Findings) {
			fmt.Fprintf(&b, "%s  %s [%s]\n", severityStyle(s, f.Severity), f.Message, f.Kind)
		}
	}
	if st.Healthy {
		fmt.Fprintf(&b, "\n%s\n", s.green("The cluster is healthy."))
	} else {
		fmt.Fprintf(&b, "\n%s\n", s.red("The cluster is not healthy."))
	}
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}

// severityStyle pads a severity to one width and colours it: critical red,
// warning yellow.
func severityStyle(s style, severity string) string {
	text := fmt.Sprintf("%-8s", strings.ToUpper(severity))
	switch severity {
	case api.SeverityCritical:
		return s.red(text)
	case api.SeverityWarning:
		return s.yellow(text)
	default:
		return text
	}
}

// seconds formats a number of seconds for people: "250ms", "2s", "1m30s".
func seconds(v float64) string {
	d := time.Duration(v * float64(time.Second))
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}
