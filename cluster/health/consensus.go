package health

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// consensus finds consensus-at-risk: the earliest moment from which fewer
// than a quorum of voters (q = V/2+1 of the V voting members; non-voters
// do not count) could take part in raft. It has up to three causes, each a
// clause of the one finding:
//
//   - Unreachable voters: fewer than q voters answered the probe. At is
//     Now. Clause: "now: only 1 of 3 voters answer".
//   - Chains: the largest group of voters that can all verify each other
//     (no ca-mismatch between any two of them) has fewer than q voters; a
//     voter without a report is assumed to verify with everyone. At is Now;
//     the named nodes are the voters with a ca-mismatch with another
//     voter. Clause: "now: no quorum of voters can verify each other's
//     certificates (at most 1 of 3)".
//   - Expiry: the (V−q+1)-th earliest effective expiry among the voters
//     that report one (with three voters the second, with five the third):
//     from then only q−1 voters hold a valid certificate. Voters without a
//     report are assumed never to expire (stale-report says they lack
//     one); with too few reports there is no such moment. The named nodes
//     are the voters whose certificates expire by then. Clause: "from
//     2026-12-01 04:00:00: certificates of n2, n3 expire", or once that
//     moment has passed "since …: certificates of n2, n3 expired".
//
// The message is "Consensus at risk " followed by the clauses, joined by
// "; ", the ones of now first: "Consensus at risk from 2026-12-01
// 04:00:00: certificates of n2, n3 expire". At, and Result.ConsensusAtRisk,
// is the earliest moment of the causes. The severity is critical when At
// is within the evaluating node's WarnBefore of Now, or past (At ≤ Now +
// WarnBefore), else info: every cluster whose voters report an expiry has
// this finding, and it becomes critical warn_before ahead.
func (v *view) consensus(m chainMatrix) (*Finding, time.Time) {
	voters := v.voters()
	if len(voters) == 0 {
		return nil, time.Time{}
	}
	q := quorum(len(voters))
	var clauses []string
	var at time.Time
	named := make(map[string]bool)
	earliest := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}

	var down []string
	for _, id := range voters {
		if p, ok := v.probes[id]; !ok || p.Err != "" {
			down = append(down, id)
		}
	}
	if len(voters)-len(down) < q {
		clauses = append(clauses, fmt.Sprintf("now: only %d of %d voters answer", len(voters)-len(down), len(voters)))
		for _, id := range down {
			named[id] = true
		}
		earliest(v.in.Now)
	}

	if n := largestClique(voters, m.compatible); n < q {
		clauses = append(clauses, fmt.Sprintf("now: no quorum of voters can verify each other's certificates (at most %d of %d)", n, len(voters)))
		for _, a := range voters {
			for _, b := range voters {
				if a != b && !m.compatible(a, b) {
					named[a] = true
				}
			}
		}
		earliest(v.in.Now)
	}

	if t, ids, ok := v.quorumExpiry(voters, q); ok {
		if t.After(v.in.Now) {
			clauses = append(clauses, fmt.Sprintf("from %s: certificates of %s expire", formatTime(t), nodeList(ids)))
		} else {
			clauses = append(clauses, fmt.Sprintf("since %s: certificates of %s expired", formatTime(t), nodeList(ids)))
		}
		for _, id := range ids {
			named[id] = true
		}
		earliest(t)
	}

	if len(clauses) == 0 {
		return nil, time.Time{}
	}
	sev := Info
	if !at.After(v.in.Now.Add(v.in.WarnBefore)) {
		sev = Critical
	}
	return &Finding{
		Kind: ConsensusAtRisk, Severity: sev, Nodes: sortedKeys(named), At: at,
		Message: "Consensus at risk " + strings.Join(clauses, "; "),
	}, at
}

// quorumExpiry is the (V−q+1)-th earliest effective expiry among the
// voters, and the voters whose certificates expire by then, sorted.
func (v *view) quorumExpiry(voters []string, q int) (time.Time, []string, bool) {
	exp := make(map[string]time.Time)
	var times []time.Time
	for _, id := range voters {
		if t, ok := effectiveExpiry(v.reports[id]); ok {
			exp[id] = t
			times = append(times, t)
		}
	}
	k := len(voters) - q + 1
	if len(times) < k {
		return time.Time{}, nil, false
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	t := times[k-1]
	var ids []string
	for _, id := range voters {
		if e, ok := exp[id]; ok && !e.After(t) {
			ids = append(ids, id)
		}
	}
	return t, ids, true
}

// largestClique is the size of the largest group of ids in which every two
// are compatible. Exhaustive with pruning: raft configurations are small.
func largestClique(ids []string, compatible func(a, b string) bool) int {
	best := 0
	var grow func(group, rest []string)
	grow = func(group, rest []string) {
		if len(group)+len(rest) <= best {
			return
		}
		if len(rest) == 0 {
			best = len(group)
			return
		}
		x := rest[0]
		if !slices.ContainsFunc(group, func(g string) bool { return !compatible(g, x) }) {
			grow(append(group[:len(group):len(group)], x), rest[1:])
		}
		grow(group, rest[1:])
	}
	grow(nil, ids)
	return best
}
