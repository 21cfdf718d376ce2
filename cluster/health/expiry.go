package health

import "fmt"

// expiry finds, for every member with a report, cert-expired when its
// effective expiry is at or before Now, and cert-expires-soon when it is
// within the evaluating node's WarnBefore of Now (the boundary included),
// the rule of tlsmgr's own warnings. Both are warnings: one node's
// certificate; what it costs the quorum is consensus-at-risk's to say.
func (v *view) expiry() []Finding {
	var out []Finding
	for _, id := range v.ids {
		r, ok := v.reports[id]
		if !ok {
			continue
		}
		exp, ok := effectiveExpiry(r)
		if !ok {
			continue
		}
		left := exp.Sub(v.in.Now)
		switch {
		case left <= 0:
			out = append(out, Finding{
				Kind: CertExpired, Severity: Warning, Nodes: []string{id}, At: exp,
				Message: fmt.Sprintf("Certificate of node %s expired on %s", id, formatTime(exp)),
			})
		case left <= v.in.WarnBefore:
			out = append(out, Finding{
				Kind: CertExpiresSoon, Severity: Warning, Nodes: []string{id}, At: exp,
				Message: fmt.Sprintf("Certificate of node %s expires in %s", id, FormatLeft(left)),
			})
		}
	}
	return out
}
