package health

import (
	"fmt"
	"slices"
	"strings"
)

// Handshake failures as peernet records them in Observation.Failure.
const (
	FailureExpired      = "expired"
	FailureUnknownCA    = "unknown-ca"
	FailureNameMismatch = "name-mismatch"
)

// sanMismatch finds san-mismatch for every member that some node failed
// to dial because its certificate does not name the host it was dialed at:
// an observation about it whose last handshake failed (FailedAt set and
// not followed by a successful one, At) with Failure "name-mismatch". One
// finding per member, naming the hosts (sorted) and the observers.
func (v *view) sanMismatch() []Finding {
	hosts := make(map[string]map[string]bool)
	observers := make(map[string]map[string]bool)
	for _, o := range v.in.Observations {
		peer := v.resolvePeer(o.Peer)
		if peer == "" || !failing(o) || o.Failure != FailureNameMismatch {
			continue
		}
		if hosts[peer] == nil {
			hosts[peer], observers[peer] = make(map[string]bool), make(map[string]bool)
		}
		if o.DialedHost != "" {
			hosts[peer][o.DialedHost] = true
		}
		observers[peer][v.observer(o)] = true
	}
	var out []Finding
	for _, id := range sortedKeys(hosts) {
		h := sortedKeys(hosts[id])
		what := "the host it is dialed at"
		if len(h) > 0 {
			what = strings.Join(h, ", ") + ", the host it is dialed at"
			if len(h) > 1 {
				what = strings.Join(h, ", ") + ", the hosts it is dialed at"
			}
		}
		out = append(out, Finding{
			Kind: SANMismatch, Severity: Warning, Nodes: []string{id},
			Message: fmt.Sprintf("Certificate of node %s does not name %s (seen by %s)", id, what, nodeList(sortedKeys(observers[id]))),
		})
	}
	return out
}

// observedDiffers finds observed-differs for every member that a peer saw
// present a certificate other than the ones it reports: an observation
// about it with a Fingerprint that matches none of its report's pairs,
// made more than MaxClockSkew after the report was written (At later than
// Time + MaxClockSkew). A certificate seen before the node reported its
// new one is a rotation in progress, not a difference, and the margin
// keeps a skewed observer's clock from making it look later than it was.
// Members without a report are not judged.
func (v *view) observedDiffers() []Finding {
	seen := make(map[string]map[string][]string) // member -> fingerprint -> observers
	for _, o := range v.in.Observations {
		peer := v.resolvePeer(o.Peer)
		r, ok := v.reports[peer]
		if peer == "" || !ok || o.Fingerprint == "" || !o.At.After(r.Time.Add(MaxClockSkew)) {
			continue
		}
		if slices.ContainsFunc(r.Pairs, func(p CertReport) bool { return strings.EqualFold(p.Fingerprint, o.Fingerprint) }) {
			continue
		}
		if seen[peer] == nil {
			seen[peer] = make(map[string][]string)
		}
		obs := v.observer(o)
		if !slices.Contains(seen[peer][o.Fingerprint], obs) {
			seen[peer][o.Fingerprint] = append(seen[peer][o.Fingerprint], obs)
		}
	}
	var out []Finding
	for _, id := range sortedKeys(seen) {
		var parts []string
		for _, fp := range sortedKeys(seen[id]) {
			obs := seen[id][fp]
			slices.Sort(obs)
			parts = append(parts, fmt.Sprintf("%s seen by %s", shortFingerprint(fp), nodeList(obs)))
		}
		reported := "none"
		if ps := v.reports[id].Pairs; len(ps) > 0 {
			reported = shortFingerprint(ps[0].Fingerprint)
		}
		out = append(out, Finding{
			Kind: ObservedDiffers, Severity: Warning, Nodes: []string{id},
			Message: fmt.Sprintf("Node %s presents another certificate than it reports (%s): %s", id, reported, strings.Join(parts, "; ")),
		})
	}
	return out
}
