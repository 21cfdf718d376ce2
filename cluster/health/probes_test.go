package health_test

import (
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

func TestUnreachable(t *testing.T) {
	tests := []struct {
		name  string
		id    string
		probe func(*health.Probe)
		want  []want
	}{
		{"Answering", "n2", func(*health.Probe) {}, nil},
		{"ProbeFailed", "n2", func(p *health.Probe) { p.Err = "context deadline exceeded" },
			[]want{{health.Warning, []string{"n2"}, "Node n2 does not answer: context deadline exceeded", time.Time{}}}},
		{"LastContactExactlyElectionTimeout", "n2", func(p *health.Probe) { p.LastContact = 600 * time.Millisecond }, nil},
		{"LastContactBeyondElectionTimeout", "n2", func(p *health.Probe) { p.LastContact = 600*time.Millisecond + 1 },
			[]want{{health.Warning, []string{"n2"}, "Node n2 has had no contact with the leader for longer than the election timeout (600ms)", time.Time{}}}},
		{"Candidate", "n3", func(p *health.Probe) { p.Role, p.LastContact = "candidate", 5*time.Second },
			[]want{{health.Warning, []string{"n3"}, "Node n3 has had no contact with the leader for longer than the election timeout (600ms)", time.Time{}}}},
		{"LeaderIgnoresLastContact", "n1", func(p *health.Probe) { p.LastContact = time.Hour }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			setProbe(&in, tt.id, tt.probe)
			res := checkFindings(t, in, health.Unreachable, tt.want)
			if res.Healthy != (tt.want == nil) {
				t.Errorf("Healthy = %v with %d unreachable findings", res.Healthy, len(tt.want))
			}
		})
	}
	t.Run("NotProbed", func(t *testing.T) {
		in := MustCluster(t, 3)
		in.Probes = in.Probes[:2]
		checkFindings(t, in, health.Unreachable, []want{{health.Warning, []string{"n3"}, "Node n3 was not probed", time.Time{}}})
	})
	t.Run("NoElectionTimeout", func(t *testing.T) {
		in := MustCluster(t, 3)
		in.ElectionTimeout = 0
		setProbe(&in, "n2", func(p *health.Probe) { p.LastContact = time.Hour })
		checkFindings(t, in, health.Unreachable, nil)
	})
}

func TestClockSkew(t *testing.T) {
	tests := []struct {
		name     string
		clock    time.Time
		rtt      time.Duration
		received time.Time
		want     []want
	}{
		{"Same", now, 0, time.Time{}, nil},
		{"AheadExactly2s", now.Add(2 * time.Second), 0, time.Time{}, nil},
		{"AheadJustOver2s", now.Add(2*time.Second + 1), 0, time.Time{},
			[]want{{health.Warning, []string{"n2"}, "Clock of node n2 is 2s ahead of node n1's", time.Time{}}}},
		{"Behind", now.Add(-5 * time.Second), 0, time.Time{},
			[]want{{health.Warning, []string{"n2"}, "Clock of node n2 is 5s behind node n1's", time.Time{}}}},
		// With a round trip of 400ms the answer was read between now−400ms
		// and now: the estimate is now−200ms, ±200ms.
		{"RTTAheadAtBound", now.Add(-200*time.Millisecond + 2200*time.Millisecond), 400 * time.Millisecond, time.Time{}, nil},
		{"RTTAheadBeyondBound", now.Add(-200*time.Millisecond + 2200*time.Millisecond + time.Millisecond), 400 * time.Millisecond, time.Time{},
			[]want{{health.Warning, []string{"n2"}, "Clock of node n2 is 2s ahead of node n1's", time.Time{}}}},
		{"RTTBehindAtBound", now.Add(-200*time.Millisecond - 2200*time.Millisecond), 400 * time.Millisecond, time.Time{}, nil},
		{"RTTBehindBeyondBound", now.Add(-200*time.Millisecond - 2200*time.Millisecond - time.Millisecond), 400 * time.Millisecond, time.Time{},
			[]want{{health.Warning, []string{"n2"}, "Clock of node n2 is 2s behind node n1's", time.Time{}}}},
		// A long round trip is no skew: read at its start, the clock was right.
		{"LongRTTNoSkew", now.Add(-3 * time.Second), 6 * time.Second, time.Time{}, nil},
		// The answer arrived 3s before the evaluation: judged against then.
		{"ReceivedEarlier", now.Add(-3 * time.Second), 0, now.Add(-3 * time.Second), nil},
		{"ReceivedEarlierSkewed", now, 0, now.Add(-3 * time.Second),
			[]want{{health.Warning, []string{"n2"}, "Clock of node n2 is 3s ahead of node n1's", time.Time{}}}},
		{"NoClock", time.Time{}, 0, time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			setProbe(&in, "n2", func(p *health.Probe) { p.Clock, p.RTT, p.Received = tt.clock, tt.rtt, tt.received })
			res := checkFindings(t, in, health.ClockSkew, tt.want)
			if !res.Healthy {
				t.Errorf("clock skew made the cluster unhealthy: %+v", res.Findings)
			}
		})
	}
	t.Run("FailedProbeNotJudged", func(t *testing.T) {
		in := MustCluster(t, 3)
		setProbe(&in, "n2", func(p *health.Probe) { p.Err, p.Clock = "refused", now.Add(time.Hour) })
		checkFindings(t, in, health.ClockSkew, nil)
	})
	t.Run("FiveNodes", func(t *testing.T) {
		in := MustCluster(t, 5)
		setProbe(&in, "n4", func(p *health.Probe) { p.Clock = now.Add(-time.Minute) })
		setProbe(&in, "n2", func(p *health.Probe) { p.Clock, p.RTT = now.Add(3*time.Second), 20*time.Millisecond })
		checkFindings(t, in, health.ClockSkew, []want{
			{health.Warning, []string{"n2"}, "Clock of node n2 is 3s ahead of node n1's", time.Time{}},
			{health.Warning, []string{"n4"}, "Clock of node n4 is 1m behind node n1's", time.Time{}},
		})
	})
}

func TestHealthy(t *testing.T) {
	tests := []struct {
		name   string
		change func(*health.Input)
		want   bool
	}{
		{"Healthy", func(*health.Input) {}, true},
		{"FollowerBehindByMaxLag", func(in *health.Input) {
			setProbe(in, "n3", func(p *health.Probe) { p.Applied = 1000 - health.MaxAppliedLag })
		}, true},
		{"FollowerBehindBeyondMaxLag", func(in *health.Input) {
			setProbe(in, "n3", func(p *health.Probe) { p.Applied = 1000 - health.MaxAppliedLag - 1 })
		}, false},
		{"FollowerAhead", func(in *health.Input) {
			setProbe(in, "n3", func(p *health.Probe) { p.Applied = 1010 })
		}, true},
		{"LeaderFromProbes", func(in *health.Input) { in.Leader = "" }, true},
		{"NoLeader", func(in *health.Input) {
			in.Leader = ""
			setProbe(in, "n1", func(p *health.Probe) { p.Role = "follower" })
		}, false},
		{"LeaderUnreachable", func(in *health.Input) {
			setProbe(in, "n1", func(p *health.Probe) { p.Err = "refused" })
		}, false},
		{"NoMembers", func(in *health.Input) { in.Members = nil }, false},
		// Consensus is at risk in an hour, but that is beyond a WarnBefore
		// of zero: info, not critical, so the warnings alone leave it healthy.
		{"ExpiryWarningsOnly", func(in *health.Input) {
			setExpiry(in, "n2", now.Add(time.Hour))
			setExpiry(in, "n3", now.Add(-time.Hour))
			in.WarnBefore = 0
		}, true},
		{"OneExpiryWarning", func(in *health.Input) { setExpiry(in, "n2", now.Add(time.Hour)) }, true},
		{"Critical", func(in *health.Input) {
			setExpiry(in, "n2", now.Add(time.Hour))
			setExpiry(in, "n3", now.Add(2*time.Hour))
		}, false},
		{"NonVoterLagging", func(in *health.Input) {
			in.Members = append(in.Members, health.Member{ID: "n4", Voter: false})
			in.Probes = append(in.Probes, health.Probe{NodeID: "n4", Role: "follower", Applied: 1})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			tt.change(&in)
			res := health.Evaluate(in)
			if res.Healthy != tt.want {
				t.Errorf("Healthy = %v, want %v; findings %+v", res.Healthy, tt.want, res.Findings)
			}
		})
	}
}
