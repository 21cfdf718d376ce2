package health

import (
	"fmt"
	"time"
)

// MaxClockSkew is how far a member's clock may be from the evaluating
// node's, beyond the uncertainty of the probe's round trip, before
// clock-skew is found.
const MaxClockSkew = 2 * time.Second

// MaxAppliedLag is how many log entries a member's applied index may be
// behind the leader's, in the same round of probes, and still count as
// caught up. The probes are answered at slightly different moments while
// writes are in flight, and a follower applies an entry only after the
// leader has, so under load a healthy follower is a few entries behind;
// 250 is Consul autopilot's default for the same judgement
// (MaxTrailingLogs). A node restarted from an old snapshot is thousands
// behind until it has caught up.
const MaxAppliedLag = 250

// unreachable finds unreachable for every member that was not probed, whose
// probe failed (Err set), or that is not the leader (by its own Role) and
// has had no contact with the leader for longer than ElectionTimeout
// (exactly the timeout is not too long; a zero ElectionTimeout disables
// this last test).
func (v *view) unreachable() []Finding {
	var out []Finding
	for _, id := range v.ids {
		p, ok := v.probes[id]
		var msg string
		switch {
		case !ok:
			msg = fmt.Sprintf("Node %s was not probed", id)
		case p.Err != "":
			msg = fmt.Sprintf("Node %s does not answer: %s", id, p.Err)
		case p.Role != "leader" && v.in.ElectionTimeout > 0 && p.LastContact > v.in.ElectionTimeout:
			msg = fmt.Sprintf("Node %s has had no contact with the leader for longer than the election timeout (%s)", id, v.in.ElectionTimeout)
		default:
			continue
		}
		out = append(out, Finding{Kind: Unreachable, Severity: Warning, Nodes: []string{id}, Message: msg})
	}
	return out
}

// clockSkew finds clock-skew for every member whose probe answered with a
// clock reading too far from the evaluating node's.
//
// The member read its clock at some moment of the probe's round trip, so
// between Received−RTT and Received on the evaluating node's clock
// (Received is the probe's, else Input.Now). The estimate is the middle:
//
//	skew = Clock − (Received − RTT/2)
//
// and its uncertainty is ±RTT/2. A member is skewed when
//
//	|skew| > MaxClockSkew + RTT/2
//
// (exactly at the bound is not skewed), that is when its clock is off by
// more than MaxClockSkew whatever the moment it was read. A probe without a
// clock reading (zero Clock) is not judged.
func (v *view) clockSkew() []Finding {
	var out []Finding
	for _, id := range v.ids {
		p, ok := v.probes[id]
		if !ok || p.Err != "" || p.Clock.IsZero() {
			continue
		}
		skew, skewed := clockSkew(p, v.in.Now)
		if !skewed {
			continue
		}
		dir := "ahead of"
		if skew < 0 {
			dir, skew = "behind", -skew
		}
		out = append(out, Finding{
			Kind: ClockSkew, Severity: Warning, Nodes: []string{id},
			Message: fmt.Sprintf("Clock of node %s is %s %s node %s's", id, FormatLeft(skew), dir, v.in.Self),
		})
	}
	return out
}

// clockSkew is the estimated skew of p's clock and whether it is beyond
// the tolerance; now stands for Received when the probe does not say.
func clockSkew(p Probe, now time.Time) (time.Duration, bool) {
	received := p.Received
	if received.IsZero() {
		received = now
	}
	skew := p.Clock.Sub(received.Add(-p.RTT / 2))
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	return skew, abs > MaxClockSkew+p.RTT/2
}

// caughtUp reports whether a leader is known and answered, and every
// member answered with an applied index at most MaxAppliedLag behind the
// leader's (ahead is fine: it was probed later). The leader is
// Input.Leader, else the member whose probe says it leads (the first by
// id).
func (v *view) caughtUp() bool {
	leader := v.in.Leader
	if leader == "" {
		for _, id := range v.ids {
			if p, ok := v.probes[id]; ok && p.Err == "" && p.Role == "leader" {
				leader = id
				break
			}
		}
	}
	lp, ok := v.probes[leader]
	if leader == "" || !ok || lp.Err != "" {
		return false
	}
	for _, id := range v.ids {
		p, ok := v.probes[id]
		if !ok || p.Err != "" || p.Applied+MaxAppliedLag < lp.Applied {
			return false
		}
	}
	return true
}

// healthy is the one predicate of a healthy cluster: members are known,
// every member is reachable (no unreachable finding) and caught up, no
// reload fails and no finding is critical. Warnings about expiry, stale
// reports, skewed clocks, names, chains or observations do not make a
// cluster unhealthy by themselves.
func (v *view) healthy(fs []Finding) bool {
	if len(v.ids) == 0 {
		return false
	}
	for _, f := range fs {
		if f.Severity == Critical || f.Kind == Unreachable || f.Kind == ReloadFailing {
			return false
		}
	}
	return v.caughtUp()
}
