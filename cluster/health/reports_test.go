package health_test

import (
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

func TestReloadFailing(t *testing.T) {
	tests := []struct {
		name string
		pair func(*health.CertReport)
		want []want
	}{
		{"Fine", func(*health.CertReport) {}, nil},
		{"LastErrorWithReason", func(p *health.CertReport) {
			p.LastError, p.LastErrorReason = "certificate is not valid for n2.example.net", "san-mismatch"
		}, []want{{health.Warning, []string{"n2"}, "Node n2 fails to reload certificate /etc/minkms/node.crt (san-mismatch): certificate is not valid for n2.example.net", time.Time{}}}},
		{"LastErrorWithoutReason", func(p *health.CertReport) { p.LastError = "open /etc/minkms/node.crt: permission denied" },
			[]want{{health.Warning, []string{"n2"}, "Node n2 fails to reload certificate /etc/minkms/node.crt: open /etc/minkms/node.crt: permission denied", time.Time{}}}},
		{"DiffersFromDisk", func(p *health.CertReport) { p.DiffersFromDisk = true },
			[]want{{health.Warning, []string{"n2"}, "Node n2 serves a certificate other than /etc/minkms/node.crt on disk", time.Time{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			setReport(&in, "n2", func(r *health.NodeReport) { tt.pair(&r.Pairs[0]) })
			res := checkFindings(t, in, health.ReloadFailing, tt.want)
			if res.Healthy != (tt.want == nil) {
				t.Errorf("Healthy = %v with %d reload-failing findings", res.Healthy, len(tt.want))
			}
		})
	}
	t.Run("TwoPairs", func(t *testing.T) {
		in := MustCluster(t, 3)
		setReport(&in, "n2", func(r *health.NodeReport) {
			r.Pairs[0].DiffersFromDisk = true
			r.Pairs = append(r.Pairs, health.CertReport{Cert: "/etc/minkms/api.crt", LastError: "expired"})
		})
		checkFindings(t, in, health.ReloadFailing, []want{{health.Warning, []string{"n2"},
			"Node n2 serves a certificate other than /etc/minkms/node.crt on disk; Node n2 fails to reload certificate /etc/minkms/api.crt: expired", time.Time{}}})
	})
}

func TestStaleReport(t *testing.T) {
	tests := []struct {
		name     string
		age      time.Duration
		own      time.Duration // the report's ReloadInterval
		fallback time.Duration // Input.ReloadInterval
		want     []want
	}{
		{"Fresh", time.Minute, 0, 5 * time.Minute, nil},
		{"ExactlyTwoIntervals", 10 * time.Minute, 0, 5 * time.Minute, nil},
		{"JustOverTwoIntervals", 10*time.Minute + time.Second, 0, 5 * time.Minute,
			[]want{{health.Warning, []string{"n2"}, "Node n2 has not reported since 2026-11-29 03:49:59", now.Add(-10*time.Minute - time.Second)}}},
		{"OwnIntervalLonger", 15 * time.Minute, 10 * time.Minute, 5 * time.Minute, nil},
		{"OwnIntervalShorter", 3 * time.Minute, time.Minute, 5 * time.Minute,
			[]want{{health.Warning, []string{"n2"}, "Node n2 has not reported since 2026-11-29 03:57:00", time.Time{}}}},
		{"NoIntervalKnown", 24 * time.Hour, 0, 0, nil},
		{"FromTheFuture", -time.Hour, 0, 5 * time.Minute, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			in.ReloadInterval = tt.fallback
			setReport(&in, "n2", func(r *health.NodeReport) { r.Time, r.ReloadInterval = now.Add(-tt.age), tt.own })
			res := checkFindings(t, in, health.StaleReport, tt.want)
			if !res.Healthy {
				t.Errorf("a stale report made the cluster unhealthy: %+v", res.Findings)
			}
		})
	}
	t.Run("NoReport", func(t *testing.T) {
		in := MustCluster(t, 3)
		delete(in.Reports, "n3")
		checkFindings(t, in, health.StaleReport, []want{{health.Warning, []string{"n3"}, "No report from node n3", time.Time{}}})
	})
}
