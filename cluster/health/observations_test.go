package health_test

import (
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

func TestSANMismatch(t *testing.T) {
	failed := now.Add(-time.Minute)
	tests := []struct {
		name string
		obs  []health.Observation
		want []want
	}{
		{"None", nil, nil},
		{"Failing", []health.Observation{
			{Observer: "n1", Peer: "n2", DialedHost: "n2.example.net", At: failed.Add(-time.Hour), FailedAt: failed, Failure: "name-mismatch"},
		}, []want{{health.Warning, []string{"n2"}, "Certificate of node n2 does not name n2.example.net, the host it is dialed at (seen by n1)", time.Time{}}}},
		{"SuccessAtTheSameMoment", []health.Observation{
			{Observer: "n1", Peer: "n2", DialedHost: "n2.example.net", At: failed, FailedAt: failed, Failure: "name-mismatch"},
		}, []want{{health.Warning, []string{"n2"}, "Certificate of node n2 does not name n2.example.net, the host it is dialed at (seen by n1)", time.Time{}}}},
		{"SucceededSince", []health.Observation{
			{Observer: "n1", Peer: "n2", DialedHost: "n2.example.net", At: failed.Add(time.Nanosecond), FailedAt: failed, Failure: "name-mismatch"},
		}, nil},
		{"OtherFailure", []health.Observation{
			{Observer: "n1", Peer: "n2", DialedHost: "n2.example.net", FailedAt: failed, Failure: "expired"},
		}, nil},
		{"PeerByAddressAndSelfAsObserver", []health.Observation{
			{Peer: "10.0.0.3:7001", DialedHost: "10.0.0.3", FailedAt: failed, Failure: "name-mismatch"},
			{Observer: "n2", Peer: "n3", DialedHost: "n3.example.net", FailedAt: failed, Failure: "name-mismatch"},
		}, []want{{health.Warning, []string{"n3"}, "Certificate of node n3 does not name 10.0.0.3, n3.example.net, the hosts it is dialed at (seen by n1, n2)", time.Time{}}}},
		{"UnknownPeerIgnored", []health.Observation{
			{Observer: "n1", Peer: "10.9.9.9:7001", DialedHost: "10.9.9.9", FailedAt: failed, Failure: "name-mismatch"},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			in.Observations = tt.obs
			res := checkFindings(t, in, health.SANMismatch, tt.want)
			if !res.Healthy {
				t.Errorf("a name mismatch alone made the cluster unhealthy: %+v", res.Findings)
			}
		})
	}
}

func TestObservedDiffers(t *testing.T) {
	reported := now.Add(-time.Hour) // n2's report
	tests := []struct {
		name string
		obs  []health.Observation
		want []want
	}{
		{"SameAsReported", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "fp-n2", At: now}}, nil},
		{"SameIgnoringCase", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "FP-N2", At: now}}, nil},
		{"Differs", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "0123456789abcdef0123", At: now}},
			[]want{{health.Warning, []string{"n2"}, "Node n2 presents another certificate than it reports (fp-n2): 0123456789abcdef seen by n1", time.Time{}}}},
		// Seen before the node reported, or within the skew tolerance of
		// it: a rotation in progress.
		{"OlderThanReport", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "old", At: reported.Add(-time.Minute)}}, nil},
		{"ExactlySkewAfterReport", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "old", At: reported.Add(health.MaxClockSkew)}}, nil},
		{"JustBeyondSkewAfterReport", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "old", At: reported.Add(health.MaxClockSkew + 1)}},
			[]want{{health.Warning, []string{"n2"}, "Node n2 presents another certificate than it reports (fp-n2): old seen by n1", time.Time{}}}},
		{"MatchesAnotherPair", []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "fp-api", At: now}}, nil},
		{"SeveralObservers", []health.Observation{
			{Observer: "n3", Peer: "n2", Fingerprint: "x", At: now},
			{Peer: "n2", Fingerprint: "x", At: now},
			{Observer: "n3", Peer: "n2", Fingerprint: "y", At: now},
		}, []want{{health.Warning, []string{"n2"}, "Node n2 presents another certificate than it reports (fp-n2): x seen by n1, n3; y seen by n3", time.Time{}}}},
		{"NoFingerprint", []health.Observation{{Observer: "n1", Peer: "n2", At: now, FailedAt: now, Failure: "unknown-ca"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			setReport(&in, "n2", func(r *health.NodeReport) {
				r.Time = reported
				r.Pairs = append(r.Pairs, health.CertReport{Cert: "/etc/minkms/api.crt", Fingerprint: "fp-api", EffectiveNotAfter: now.Add(90 * 24 * time.Hour)})
			})
			in.ReloadInterval = 24 * time.Hour
			in.Observations = tt.obs
			checkFindings(t, in, health.ObservedDiffers, tt.want)
		})
	}
	t.Run("NoReport", func(t *testing.T) {
		in := MustCluster(t, 3)
		delete(in.Reports, "n2")
		in.Observations = []health.Observation{{Observer: "n1", Peer: "n2", Fingerprint: "x", At: now}}
		checkFindings(t, in, health.ObservedDiffers, nil)
	})
}
