package health_test

import (
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

func TestCertExpiry(t *testing.T) {
	tests := []struct {
		name   string
		expiry time.Time
		kind   health.Kind
		want   []want
	}{
		{"FarAway", now.Add(90 * 24 * time.Hour), health.CertExpiresSoon, nil},
		{"JustBeyondWarnBefore", now.Add(72*time.Hour + time.Second), health.CertExpiresSoon, nil},
		{"ExactlyWarnBefore", now.Add(72 * time.Hour), health.CertExpiresSoon,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expires in 72h", now.Add(72 * time.Hour)}}},
		{"In36h", now.Add(36 * time.Hour), health.CertExpiresSoon,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expires in 36h", now.Add(36 * time.Hour)}}},
		{"RoundedToNearestHour", now.Add(35*time.Hour + 31*time.Minute), health.CertExpiresSoon,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expires in 36h", time.Time{}}}},
		{"OneSecondLeft", now.Add(time.Second), health.CertExpiresSoon,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expires in 1s", time.Time{}}}},
		{"ExactlyNow", now, health.CertExpired,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expired on 2026-11-29 04:00:00", now}}},
		{"Past", time.Date(2026, 11, 28, 1, 2, 3, 0, time.FixedZone("CET", 3600)), health.CertExpired,
			[]want{{health.Warning, []string{"n3"}, "Certificate of node n3 expired on 2026-11-28 00:02:03", time.Time{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			setExpiry(&in, "n3", tt.expiry)
			res := checkFindings(t, in, tt.kind, tt.want)
			other := health.CertExpired
			if tt.kind == health.CertExpired {
				other = health.CertExpiresSoon
			}
			if got := ofKind(res, other); len(got) != 0 {
				t.Errorf("also %s: %+v", other, got)
			}
			if !res.Healthy {
				t.Errorf("one node's expiry made the cluster unhealthy: %+v", res.Findings)
			}
		})
	}

	t.Run("EarliestPairCounts", func(t *testing.T) {
		in := MustCluster(t, 3)
		setReport(&in, "n2", func(r *health.NodeReport) {
			r.Pairs = append(r.Pairs, health.CertReport{Cert: "/etc/minkms/api.crt", EffectiveNotAfter: now.Add(10 * time.Hour), NotAfter: now.Add(20 * time.Hour)})
		})
		checkFindings(t, in, health.CertExpiresSoon, []want{{health.Warning, []string{"n2"}, "Certificate of node n2 expires in 10h", now.Add(10 * time.Hour)}})
	})
	t.Run("EffectiveBeforeLeaf", func(t *testing.T) {
		in := MustCluster(t, 3)
		setReport(&in, "n2", func(r *health.NodeReport) { r.Pairs[0].EffectiveNotAfter = now.Add(-time.Hour) })
		checkFindings(t, in, health.CertExpired, []want{{health.Warning, []string{"n2"}, "Certificate of node n2 expired on 2026-11-29 03:00:00", time.Time{}}})
	})
	t.Run("NonMemberIgnored", func(t *testing.T) {
		in := MustCluster(t, 3)
		in.Reports["n9"] = health.NodeReport{NodeID: "n9", Pairs: []health.CertReport{{EffectiveNotAfter: now}}}
		checkFindings(t, in, health.CertExpired, nil)
	})
}

func TestFormatLeft(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{36 * time.Hour, "36h"},
		{36*time.Hour - time.Second, "36h"},
		{35*time.Hour + 30*time.Minute, "36h"},
		{35*time.Hour + 29*time.Minute, "35h"},
		{59*time.Minute + 30*time.Second, "1h"},
		{59*time.Minute + 29*time.Second, "59m"},
		{59*time.Second + 500*time.Millisecond, "1m"},
		{30 * time.Second, "30s"},
		{0, "0s"},
		{-2 * time.Hour, "-2h"},
	}
	for _, tt := range tests {
		if got := health.FormatLeft(tt.d); got != tt.want {
			t.Errorf("FormatLeft(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
