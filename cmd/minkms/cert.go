package main

// cert check needs the server package (the config file) and tlsmgr (the
// node's own validation); cert status and cert reload use the SDK only.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/tlsmgr"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, (*cli).certCommand)
}

func (c *cli) certCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Check, inspect and reload the TLS certificates of nodes",
		Long: `Check certificate files offline with the same validation a node applies
before it serves them, show what a running node serves, and make it reload
its certificate files now.

"check" works locally. "status" and "reload" ask the one node named by
--server (or MINKMS_SERVER) and need a cluster admin API key.`,
		Example: `  minkms cert check --cert n1.crt --key n1.key --ca ca.crt --host n1.kms.example.net
  MINKMS_SERVER=https://n1.kms.example.net:7373 minkms cert status
  MINKMS_SERVER=https://n1.kms.example.net:7373 minkms cert reload`,
	}
	cmd.AddCommand(c.certCheck(), c.certStatus(), c.certReload(), c.certCA(), c.certIssue())
	return cmd
}

// checkReport is what cert check prints with --json.
type checkReport struct {
	OK       bool             `json:"ok"`   // no finding is a problem
	Host     string           `json:"host"` // "": the SANs were not checked
	CA       string           `json:"ca"`   // "": the chain was not checked
	Findings []tlsmgr.Finding `json:"findings"`
}

func (c *cli) certCheck() *cobra.Command {
	var configFile, certFile, keyFile, caFile, host string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check certificate files before deploying them",
		Long: `Check a certificate and its key offline, with the validation a node runs
before it serves them: both files readable, strict PEM, an unencrypted key
that matches the certificate, a supported algorithm, valid now, the host in
the SANs, usable for server and client authentication, a chain that
verifies against the CA bundle, and the effective expiry.

Name the files with --cert, --key and --ca, or give a node's config file
with --config to check every pair of tls.certs against tls.ca, for the host
of cluster.advertise. --host sets the host to check. Without a CA bundle
the chain is not checked; without a host, the SANs are not.

Each step is printed as "ok" or "PROBLEM" with its detail and, for a
problem, the reason code. A pair is checked up to its first problem. A
certificate that expires within the warning window (tls.warn_before, 48h by
default) counts as a problem. The exit status is 1 if there is any problem,
0 if there is none.`,
		Example: `  minkms cert check --cert n1.crt --key n1.key --ca ca.crt --host n1.kms.example.net
  minkms cert check --config /etc/minkms/config.yaml
  minkms cert check --config /etc/minkms/config.yaml --host 10.0.0.11 --json`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "a node's config file: check its tls.certs against tls.ca")
	f.StringVar(&certFile, "cert", "", "the certificate file: the leaf, then its intermediates")
	f.StringVar(&keyFile, "key", "", "the private key file of --cert")
	f.StringVar(&caFile, "ca", "", "the CA bundle, a file or directory (none: the chain is not checked)")
	f.StringVar(&host, "host", "", "the host that must be in the SANs (default with --config: that of cluster.advertise)")
	cmd.MarkFlagsOneRequired("config", "cert")
	cmd.MarkFlagsRequiredTogether("cert", "key")
	for _, name := range []string{"cert", "key", "ca"} {
		cmd.MarkFlagsMutuallyExclusive("config", name)
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg := tlsmgr.CheckConfig{
			Certs: []tlsmgr.Pair{{Cert: certFile, Key: keyFile}},
			CA:    caFile,
			Host:  host,
		}
		if configFile != "" {
			node, err := server.LoadConfig(configFile)
			if err != nil {
				return err
			}
			cfg = node.TLSManagerConfig().CheckConfig()
			if cmd.Flags().Changed("host") {
				cfg.Host = host
			}
		}
		report := checkReport{OK: true, Host: cfg.Host, CA: cfg.CA, Findings: tlsmgr.Check(cfg)}
		problems := 0
		for _, f := range report.Findings {
			if !f.OK {
				problems++
			}
		}
		report.OK = problems == 0
		var err error
		if out.json {
			err = writeJSON(c.stdout, report)
		} else {
			err = c.printCheck(report)
		}
		if err != nil {
			return err
		}
		switch problems {
		case 0:
			return nil
		case 1:
			return errors.New("cert check found 1 problem")
		default:
			return fmt.Errorf("cert check found %d problems", problems)
		}
	}
	return cmd
}

// printCheck prints one line per finding: "ok" or "PROBLEM", the file, the
// step and its detail, and the reason code of a problem.
func (c *cli) printCheck(r checkReport) error {
	s := styleFor(c.stdout)
	var b strings.Builder
	if r.Host == "" {
		fmt.Fprintln(&b, "skip    SANs: not checked: no host (set --host)")
	}
	if r.CA == "" {
		fmt.Fprintln(&b, "skip    chain: not checked: no CA bundle (set --ca)")
	}
	for _, f := range r.Findings {
		mark := s.green("ok") + "     "
		if !f.OK {
			mark = s.red("PROBLEM")
		}
		line := fmt.Sprintf("%s %s: %s: %s", mark, f.File, f.What, f.Detail)
		if f.Reason != "" {
			line += fmt.Sprintf(" (%s)", f.Reason)
		}
		fmt.Fprintln(&b, line)
	}
	if r.OK {
		fmt.Fprintln(&b, s.green("No problems found."))
	}
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}

// nodeClient returns a client of the one node that cert status and cert
// reload are about. The SDK fails over between endpoints, so with several
// the answer could come from any node: that is refused.
func (c *cli) nodeClient(cmd *cobra.Command) (*api.Client, string, error) {
	client, err := c.client(cmd)
	if err != nil {
		return nil, "", err
	}
	endpoints := client.Endpoints()
	if len(endpoints) > 1 {
		return nil, "", fmt.Errorf("'%s' asks one node, but %d servers are given (%s): name the node with --server",
			cmd.CommandPath(), len(endpoints), strings.Join(endpoints, ", "))
	}
	return client, endpoints[0], nil
}

func (c *cli) certStatus() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the certificates a node serves",
		Long: `Show what the node named by --server (or MINKMS_SERVER; exactly one) serves:
per certificate pair the served certificate (subject, issuer, serial,
fingerprint, SANs, key algorithm, validity and effective expiry), when its
files were last checked, reloaded and rotated, the last error and whether
the files on disk differ from what is served; then the CA bundle.

What is shown is what the node serves, which is not necessarily what is on
disk: a refused file leaves the last good certificate serving. It needs a
cluster admin API key.

--node ID shows member ID instead, whichever node --server names (one or
several): the node that answers asks member ID over the cluster's internal
connections, so a node whose client API cannot be reached can still be
inspected.`,
		Example: `  MINKMS_SERVER=https://n1.kms.example.net:7373 minkms cert status
  minkms cert status --server https://n2.kms.example.net:7373 --json
  minkms cert status --node n3`,
		Args: cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	var node string
	cmd.Flags().StringVar(&node, "node", "", "show the member with this node id, asked through any node")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("node") {
			client, err := c.client(cmd)
			if err != nil {
				return err
			}
			st, err := client.NodeTLSStatus(cmd.Context(), node)
			if err != nil {
				return err
			}
			if out.json {
				return writeJSON(c.stdout, st)
			}
			return c.printTLSStatus("node "+node, st, time.Now())
		}
		client, endpoint, err := c.nodeClient(cmd)
		if err != nil {
			return err
		}
		st, err := client.TLSStatus(cmd.Context())
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, st)
		}
		return c.printTLSStatus(endpoint, st, time.Now())
	}
	return cmd
}

// printTLSStatus prints a node's TLS status as blocks of labelled values:
// the node, each pair, the CA bundle. Values are the last cell of a row, so
// colouring them does not disturb the alignment.
func (c *cli) printTLSStatus(endpoint string, st *api.TLSStatus, now time.Time) error {
	s := styleFor(c.stdout)
	fmt.Fprintln(c.stdout, s.bold("TLS status of "+endpoint))
	t := newTable(c.stdout)
	t.row("  Effective expiry:", expiry(s, st.EffectiveExpiry, now))
	t.row("  Last check:", when(st.LastCheck))
	if err := t.flush(); err != nil {
		return err
	}
	for i, p := range st.Pairs {
		fmt.Fprintf(c.stdout, "\n%s\n", s.bold(fmt.Sprintf("Pair %d: %s", i+1, p.Cert)))
		t := newTable(c.stdout)
		t.row("  Key file:", p.Key)
		certificateRows(t, p.TLSCertificateInfo)
		t.row("  Not after:", expiry(s, p.NotAfter, now))
		t.row("  Effective expiry:", expiry(s, p.EffectiveExpiry, now))
		t.row("  Key algorithm:", orDash(p.KeyAlgorithm))
		t.row("  Last check:", when(p.LastCheck))
		t.row("  Last reload:", when(p.LastReload))
		t.row("  Last rotation:", when(p.LastRotation))
		checkRows(t, s, p.ConsecutiveFailures, p.LastErrorReason, p.LastError, p.DiffersFromDisk, "the certificate above keeps serving")
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.stdout, "\n%s\n", s.bold("CA bundle: "+orDash(st.CA.Path)))
	t = newTable(c.stdout)
	t.row("  Certificates:", len(st.CA.Certificates))
	for _, ca := range st.CA.Certificates {
		t.row("   ", fmt.Sprintf("%s, serial %s, expires %s", ca.Subject, ca.Serial, expiry(s, ca.NotAfter, now)))
	}
	t.row("  Last check:", when(st.CA.LastCheck))
	t.row("  Last reload:", when(st.CA.LastReload))
	checkRows(t, s, st.CA.ConsecutiveFailures, st.CA.LastErrorReason, st.CA.LastError, st.CA.DiffersFromDisk, "the bundle above keeps serving")
	return t.flush()
}

// certificateRows adds the rows that identify a certificate.
func certificateRows(t *table, info api.TLSCertificateInfo) {
	t.row("  Subject:", orDash(info.Subject))
	t.row("  Issuer:", orDash(info.Issuer))
	t.row("  Serial:", orDash(info.Serial))
	t.row("  Fingerprint:", orDash(info.Fingerprint))
	t.row("  SANs:", orDash(strings.Join(info.SANs, ", ")))
	t.row("  Not before:", when(info.NotBefore))
}

// checkRows adds the rows on how the checks of some files went; serving
// says what happens while the files on disk differ.
func checkRows(t *table, s style, failures int, reason, lastErr string, differs bool, serving string) {
	if failures > 0 {
		t.row("  Consecutive failures:", s.red(fmt.Sprint(failures)))
	} else {
		t.row("  Consecutive failures:", 0)
	}
	if lastErr != "" {
		t.row("  Last error:", s.red(withReason(reason, lastErr)))
	} else {
		t.row("  Last error:", "-")
	}
	if differs {
		t.row("  Differs from disk:", s.red("yes: the files on disk are unreadable or were refused; "+serving))
	} else {
		t.row("  Differs from disk:", "no")
	}
}

// withReason returns msg, prefixed with the reason code unless it names it.
func withReason(reason, msg string) string {
	switch {
	case reason == "" || strings.Contains(msg, reason):
		return msg
	case msg == "":
		return reason
	default:
		return reason + ": " + msg
	}
}

// expiry formats a moment of expiry with the time left until it, in red
// once it has passed.
func expiry(s style, t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	if d <= 0 {
		return s.red(fmt.Sprintf("%s (expired %s ago)", when(t), span(-d)))
	}
	return fmt.Sprintf("%s (in %s)", when(t), span(d))
}

// span formats a duration for people: days from two days on, else hours,
// minutes or seconds.
func span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

func (c *cli) certReload() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a node reload its certificate files now",
		Long: `Make the node named by --server (or MINKMS_SERVER; exactly one) check its
certificate files and CA bundle now, as it does on SIGHUP, and serve what
changed and passes validation. It prints the result for each pair and for
the CA bundle: unchanged, reloaded, or failed with the reason.

A node never serves files it refuses: a pair that failed keeps serving its
old certificate. The exit status is 1 if anything failed to reload, 2 if
the node refused the request (a cluster admin API key is needed), and 0
otherwise.`,
		Example: `  MINKMS_SERVER=https://n1.kms.example.net:7373 minkms cert reload
  minkms cert reload --server https://n1.kms.example.net:7373 --json`,
		Args: cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, endpoint, err := c.nodeClient(cmd)
		if err != nil {
			return err
		}
		res, err := client.ReloadTLS(cmd.Context())
		if err != nil {
			return err
		}
		if out.json {
			err = writeJSON(c.stdout, res)
		} else {
			err = c.printReload(endpoint, res)
		}
		if err != nil {
			return err
		}
		return reloadError(res)
	}
	return cmd
}

// printReload prints the result of each pair and of the CA bundle, and
// what the reload means for what is served.
func (c *cli) printReload(endpoint string, res *api.TLSReloadResult) error {
	s := styleFor(c.stdout)
	fmt.Fprintln(c.stdout, s.bold("TLS reload on "+endpoint))
	t := newTable(c.stdout, "FILE", "RESULT")
	for _, p := range res.Pairs {
		t.row(p.Cert, outcome(s, p.Outcome, p.Reason, p.Error))
	}
	t.row(orDash(res.CA.Path)+" (CA bundle)", outcome(s, res.CA.Outcome, res.CA.Reason, res.CA.Error))
	if err := t.flush(); err != nil {
		return err
	}
	var msg string
	switch {
	case res.Failed():
		return nil // reloadError says what failed
	case res.Rotated:
		msg = s.green("New certificates are served from the next handshake.")
	default:
		msg = "Nothing changed: the node serves what is on disk."
	}
	_, err := fmt.Fprintln(c.stdout, msg)
	return err
}

// outcome formats the result of a reload for one file: green when
// something new is served, red with the reason when it was refused.
func outcome(s style, o api.TLSOutcome, reason, msg string) string {
	switch o {
	case api.TLSReloaded:
		return s.green(string(o))
	case api.TLSFailed:
		return s.red(string(o) + ": " + withReason(reason, msg))
	default:
		return string(o)
	}
}

// reloadError returns the error that a reload that refused something ends
// with: what failed and that the old files keep serving.
func reloadError(res *api.TLSReloadResult) error {
	var failed []string
	pairs := 0
	for _, p := range res.Pairs {
		if p.Outcome == api.TLSFailed {
			pairs++
		}
	}
	switch {
	case pairs == 1:
		failed = append(failed, "1 certificate pair failed to reload; the node keeps serving its old certificate")
	case pairs > 1:
		failed = append(failed, fmt.Sprintf("%d certificate pairs failed to reload; the node keeps serving their old certificates", pairs))
	}
	if res.CA.Outcome == api.TLSFailed {
		failed = append(failed, "the CA bundle failed to reload; the node keeps serving its old bundle")
	}
	if len(failed) == 0 {
		return nil
	}
	return errors.New(strings.Join(failed, "; ") + " (fix the files, then run 'minkms cert reload' again)")
}
