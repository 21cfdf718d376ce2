package health_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

const day = 24 * time.Hour

func TestConsensusAtRisk(t *testing.T) {
	type voterExpiry map[string]time.Duration // from now; members not named keep 90 days
	tests := []struct {
		name      string
		voters    int
		nonVoters int
		expiry    voterExpiry
		change    func(*health.Input)
		want      []want
	}{
		{"ThreeVotersFarAway", 3, 0, voterExpiry{"n2": 10 * day, "n3": 20 * day}, nil,
			[]want{{health.Info, []string{"n2", "n3"}, "Consensus at risk from 2026-12-19 04:00:00: certificates of n2, n3 expire", now.Add(20 * day)}}},
		// The case: two of three expire within warn_before; the
		// second expiry is when only one of three is left.
		{"ThreeVotersSecondWithinWarnBefore", 3, 0, voterExpiry{"n2": 30 * time.Hour, "n3": 36 * time.Hour}, nil,
			[]want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk from 2026-11-30 16:00:00: certificates of n2, n3 expire", now.Add(36 * time.Hour)}}},
		{"ThreeVotersSecondExactlyWarnBefore", 3, 0, voterExpiry{"n2": time.Hour, "n3": 72 * time.Hour}, nil,
			[]want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk from 2026-12-02 04:00:00: certificates of n2, n3 expire", now.Add(72 * time.Hour)}}},
		{"ThreeVotersSecondJustBeyondWarnBefore", 3, 0, voterExpiry{"n2": time.Hour, "n3": 72*time.Hour + time.Second}, nil,
			[]want{{health.Info, []string{"n2", "n3"}, "Consensus at risk from 2026-12-02 04:00:01: certificates of n2, n3 expire", time.Time{}}}},
		{"ThreeVotersOneExpiring", 3, 0, voterExpiry{"n3": time.Hour}, nil,
			[]want{{health.Info, []string{"n1", "n2", "n3"}, "Consensus at risk from 2027-02-27 04:00:00: certificates of n1, n2, n3 expire", now.Add(90 * day)}}},
		{"ThreeVotersPassed", 3, 0, voterExpiry{"n2": -2 * time.Hour, "n3": -time.Hour}, nil,
			[]want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk since 2026-11-29 03:00:00: certificates of n2, n3 expired", now.Add(-time.Hour)}}},
		{"ThreeVotersExpiringExactlyNow", 3, 0, voterExpiry{"n2": -2 * time.Hour, "n3": 0}, nil,
			[]want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk since 2026-11-29 04:00:00: certificates of n2, n3 expired", now}}},
		{"NonVotersIgnored", 3, 2, voterExpiry{"n4": time.Hour, "n5": time.Hour, "n2": 10 * day}, nil,
			[]want{{health.Info, []string{"n1", "n2", "n3"}, "Consensus at risk from 2027-02-27 04:00:00: certificates of n1, n2, n3 expire", time.Time{}}}},
		{"VoterWithoutReport", 3, 0, voterExpiry{"n2": time.Hour}, func(in *health.Input) { delete(in.Reports, "n3") },
			[]want{{health.Info, []string{"n1", "n2"}, "Consensus at risk from 2027-02-27 04:00:00: certificates of n1, n2 expire", time.Time{}}}},
		{"TooFewReports", 3, 0, nil, func(in *health.Input) { delete(in.Reports, "n2"); delete(in.Reports, "n3") }, nil},
		{"FourVotersSecond", 4, 0, voterExpiry{"n2": time.Hour, "n3": 2 * time.Hour}, nil,
			[]want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk from 2026-11-29 06:00:00: certificates of n2, n3 expire", now.Add(2 * time.Hour)}}},
		// Five voters lose the quorum with the third expiry.
		{"FiveVotersThird", 5, 0, voterExpiry{"n2": day, "n3": 2 * day, "n4": 3 * day, "n5": 4 * day}, nil,
			[]want{{health.Critical, []string{"n2", "n3", "n4"}, "Consensus at risk from 2026-12-02 04:00:00: certificates of n2, n3, n4 expire", now.Add(3 * day)}}},
		{"FiveVotersThirdBeyondWarnBefore", 5, 0, voterExpiry{"n2": time.Hour, "n3": 2 * time.Hour, "n4": 3*day + time.Second}, nil,
			[]want{{health.Info, []string{"n2", "n3", "n4"}, "Consensus at risk from 2026-12-02 04:00:01: certificates of n2, n3, n4 expire", time.Time{}}}},
		{"FiveVotersTwoNonVotersIgnored", 5, 2, voterExpiry{"n6": time.Hour, "n7": time.Hour, "n2": time.Hour, "n3": 2 * time.Hour, "n4": 10 * day}, nil,
			[]want{{health.Info, []string{"n2", "n3", "n4"}, "Consensus at risk from 2026-12-09 04:00:00: certificates of n2, n3, n4 expire", now.Add(10 * day)}}},
		{"FiveVotersTie", 5, 0, voterExpiry{"n2": 30 * time.Hour, "n3": 30 * time.Hour, "n4": 30 * time.Hour, "n5": 30 * time.Hour}, nil,
			[]want{{health.Critical, []string{"n2", "n3", "n4", "n5"}, "Consensus at risk from 2026-11-30 10:00:00: certificates of n2, n3, n4, n5 expire", time.Time{}}}},
		{"ThreeVotersOneDown", 3, 0, voterExpiry{"n2": 10 * day, "n3": 20 * day}, func(in *health.Input) {
			setProbe(in, "n3", func(p *health.Probe) { p.Err = "refused" })
		}, []want{{health.Info, []string{"n2", "n3"}, "Consensus at risk from 2026-12-19 04:00:00: certificates of n2, n3 expire", time.Time{}}}},
		{"ThreeVotersTwoDown", 3, 0, voterExpiry{"n2": 10 * day, "n3": 20 * day}, func(in *health.Input) {
			setProbe(in, "n2", func(p *health.Probe) { p.Err = "refused" })
			in.Probes = in.Probes[:2]
		}, []want{{health.Critical, []string{"n2", "n3"}, "Consensus at risk now: only 1 of 3 voters answer; from 2026-12-19 04:00:00: certificates of n2, n3 expire", now}}},
		{"FiveVotersTwoDown", 5, 0, nil, func(in *health.Input) {
			setProbe(in, "n4", func(p *health.Probe) { p.Err = "refused" })
			setProbe(in, "n5", func(p *health.Probe) { p.Err = "refused" })
		}, []want{{health.Info, []string{"n1", "n2", "n3", "n4", "n5"}, "Consensus at risk from 2027-02-27 04:00:00: certificates of n1, n2, n3, n4, n5 expire", time.Time{}}}},
		{"FiveVotersThreeDownNonVoterUp", 5, 1, nil, func(in *health.Input) {
			for _, id := range []string{"n3", "n4", "n5"} {
				setProbe(in, id, func(p *health.Probe) { p.Err = "refused" })
			}
		}, []want{{health.Critical, []string{"n1", "n2", "n3", "n4", "n5"}, "Consensus at risk now: only 2 of 5 voters answer; from 2027-02-27 04:00:00: certificates of n1, n2, n3, n4, n5 expire", now}}},
		{"NoVoters", 0, 2, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, tt.voters+tt.nonVoters)
			for i := tt.voters; i < len(in.Members); i++ {
				in.Members[i].Voter = false
			}
			for id, d := range tt.expiry {
				setExpiry(&in, id, now.Add(d))
			}
			if tt.change != nil {
				tt.change(&in)
			}
			res := checkFindings(t, in, health.ConsensusAtRisk, tt.want)
			var wantAt time.Time
			if len(tt.want) > 0 {
				wantAt = ofKind(res, health.ConsensusAtRisk)[0].At
			}
			if !res.ConsensusAtRisk.Equal(wantAt) {
				t.Errorf("Result.ConsensusAtRisk = %v, want %v", res.ConsensusAtRisk, wantAt)
			}
			critical := len(tt.want) > 0 && tt.want[0].Severity == health.Critical
			if critical && res.Healthy {
				t.Errorf("healthy with consensus at risk within warn_before")
			}
		})
	}
}

func TestConsensusAtRiskChains(t *testing.T) {
	cas := make([]*testCA, 5)
	for i := range cas {
		cas[i] = MustCA(t, fmt.Sprintf("ca%d", i+1))
	}
	tests := []struct {
		name   string
		voters int
		ca     []int // the CA of each member's leaf and bundle, by index
		want   []want
	}{
		{"ThreeVotersOneOdd", 3, []int{0, 0, 1}, nil},
		{"ThreeVotersAllDifferent", 3, []int{0, 1, 2}, []want{{health.Critical, []string{"n1", "n2", "n3"},
			"Consensus at risk now: no quorum of voters can verify each other's certificates (at most 1 of 3); from 2027-02-27 04:00:00: certificates of n1, n2, n3 expire", now}}},
		{"FiveVotersTwoOdd", 5, []int{0, 0, 0, 1, 2}, nil},
		{"FiveVotersThreeOdd", 5, []int{0, 0, 1, 1, 2}, []want{{health.Critical, []string{"n1", "n2", "n3", "n4", "n5"},
			"Consensus at risk now: no quorum of voters can verify each other's certificates (at most 2 of 5); from 2027-02-27 04:00:00: certificates of n1, n2, n3, n4, n5 expire", now}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, tt.voters)
			for i, c := range tt.ca {
				id := fmt.Sprintf("n%d", i+1)
				setPKI(&in, id, [][]byte{cas[c].MustLeaf(t, id, leafOptions{})}, [][]byte{cas[c].der})
			}
			if tt.want == nil {
				// Only the expiry clause, far away.
				got := ofKind(health.Evaluate(in), health.ConsensusAtRisk)
				if len(got) != 1 || got[0].Severity != health.Info {
					t.Fatalf("got %+v", got)
				}
				return
			}
			checkFindings(t, in, health.ConsensusAtRisk, tt.want)
		})
	}
}
