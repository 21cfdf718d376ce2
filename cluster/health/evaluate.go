package health

import (
	"slices"
	"strings"
	"time"
)

// Evaluate decides the findings and the health of the cluster from in. It
// is a pure function: no I/O, no clock but in.Now, and the same Input gives
// the same Result, findings in the same order. The rules are those of the
// package documentation.
func Evaluate(in Input) Result {
	v := newView(in)
	var fs []Finding
	fs = append(fs, v.expiry()...)
	fs = append(fs, v.sanMismatch()...)
	chains := v.chains()
	fs = append(fs, chains.findings()...)
	fs = append(fs, v.reloadFailing()...)
	fs = append(fs, v.staleReports()...)
	fs = append(fs, v.unreachable()...)
	fs = append(fs, v.clockSkew()...)
	fs = append(fs, v.observedDiffers()...)
	risk, at := v.consensus(chains)
	if risk != nil {
		fs = append(fs, *risk)
	}
	sortFindings(fs)
	return Result{Findings: fs, Healthy: v.healthy(fs), ConsensusAtRisk: at}
}

// view is the Input with its members in order and its reports and probes
// looked up by member. Reports, probes and observations of nodes that are
// not members are ignored: a node removed from the configuration is no
// longer the cluster's concern.
type view struct {
	in      Input
	ids     []string // the members' ids, sorted, each once
	members map[string]Member
	reports map[string]NodeReport // of members only
	probes  map[string]Probe      // of members only, the first for each
}

func newView(in Input) *view {
	v := &view{
		in:      in,
		members: make(map[string]Member),
		reports: make(map[string]NodeReport),
		probes:  make(map[string]Probe),
	}
	for _, m := range in.Members {
		if _, dup := v.members[m.ID]; dup || m.ID == "" {
			continue
		}
		v.members[m.ID] = m
		v.ids = append(v.ids, m.ID)
	}
	slices.Sort(v.ids)
	for id, r := range in.Reports {
		if _, ok := v.members[id]; ok {
			v.reports[id] = r
		}
	}
	for _, p := range in.Probes {
		if _, ok := v.members[p.NodeID]; !ok {
			continue
		}
		if _, seen := v.probes[p.NodeID]; !seen {
			v.probes[p.NodeID] = p
		}
	}
	return v
}

// voters is the sorted ids of the voting members.
func (v *view) voters() []string {
	var out []string
	for _, id := range v.ids {
		if v.members[id].Voter {
			out = append(out, id)
		}
	}
	return out
}

// quorum is the number of voters raft needs: a strict majority.
func quorum(voters int) int { return voters/2 + 1 }

// resolvePeer is the member an observation is about: the member of that id,
// else the member whose configured or reported peer address it is; "" if
// none.
func (v *view) resolvePeer(peer string) string {
	if _, ok := v.members[peer]; ok {
		return peer
	}
	for _, id := range v.ids {
		if v.members[id].PeerAddr == peer && peer != "" {
			return id
		}
		if r, ok := v.reports[id]; ok && r.PeerAddr == peer && peer != "" {
			return id
		}
	}
	return ""
}

// observer is who made an observation: its Observer, else the evaluating
// node.
func (v *view) observer(o Observation) string {
	if o.Observer != "" {
		return o.Observer
	}
	return v.in.Self
}

// failing reports whether the last handshake of an observation failed: a
// failure recorded, and no successful handshake since.
func failing(o Observation) bool {
	return o.Failure != "" && !o.FailedAt.IsZero() && !o.At.After(o.FailedAt)
}

// effectiveExpiry is the earliest effective expiry of a report's pairs (a
// pair's NotAfter when its EffectiveNotAfter is not set); false when the
// report has no pair with an expiry.
func effectiveExpiry(r NodeReport) (time.Time, bool) {
	var min time.Time
	for _, p := range r.Pairs {
		t := p.EffectiveNotAfter
		if t.IsZero() {
			t = p.NotAfter
		}
		if t.IsZero() {
			continue
		}
		if min.IsZero() || t.Before(min) {
			min = t
		}
	}
	return min, !min.IsZero()
}

var severityRank = map[Severity]int{Critical: 0, Warning: 1, Info: 2}

// sortFindings orders findings by severity (critical first), then kind,
// then nodes, then message.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if d := severityRank[a.Severity] - severityRank[b.Severity]; d != 0 {
			return d
		}
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		if c := slices.Compare(a.Nodes, b.Nodes); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
}

// sortedKeys is the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
