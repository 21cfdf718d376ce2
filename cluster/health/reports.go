package health

import (
	"fmt"
	"strings"
)

// staleAfter is how many reload intervals a report may age before it is
// stale: a node writes one at least once per interval, so missing two in a
// row is not a delay.
const staleAfter = 2

// reloadFailing finds reload-failing for every member whose report has a
// pair whose last reload failed (LastError set) or whose files on disk are
// not what it serves (DiffersFromDisk). The message gives, per such pair,
// the certificate file and the error with its reason.
func (v *view) reloadFailing() []Finding {
	var out []Finding
	for _, id := range v.ids {
		r, ok := v.reports[id]
		if !ok {
			continue
		}
		var why []string
		for _, p := range r.Pairs {
			switch {
			case p.LastError != "" && p.LastErrorReason != "":
				why = append(why, fmt.Sprintf("Node %s fails to reload certificate %s (%s): %s", id, p.Cert, p.LastErrorReason, p.LastError))
			case p.LastError != "":
				why = append(why, fmt.Sprintf("Node %s fails to reload certificate %s: %s", id, p.Cert, p.LastError))
			case p.DiffersFromDisk:
				why = append(why, fmt.Sprintf("Node %s serves a certificate other than %s on disk", id, p.Cert))
			}
		}
		if len(why) > 0 {
			out = append(out, Finding{
				Kind: ReloadFailing, Severity: Warning, Nodes: []string{id},
				Message: strings.Join(why, "; "),
			})
		}
	}
	return out
}

// staleReports finds stale-report for every member without a report, and
// for every member whose report was written more than two reload
// intervals before Now (exactly two is not stale). The interval is the
// report's own ReloadInterval, else the evaluating node's; when neither is
// set the age of the report is not judged. At is the report's Time.
func (v *view) staleReports() []Finding {
	var out []Finding
	for _, id := range v.ids {
		r, ok := v.reports[id]
		if !ok {
			out = append(out, Finding{
				Kind: StaleReport, Severity: Warning, Nodes: []string{id},
				Message: fmt.Sprintf("No report from node %s", id),
			})
			continue
		}
		interval := r.ReloadInterval
		if interval <= 0 {
			interval = v.in.ReloadInterval
		}
		if interval <= 0 || v.in.Now.Sub(r.Time) <= staleAfter*interval {
			continue
		}
		out = append(out, Finding{
			Kind: StaleReport, Severity: Warning, Nodes: []string{id}, At: r.Time,
			Message: fmt.Sprintf("Node %s has not reported since %s", id, formatTime(r.Time)),
		})
	}
	return out
}
