package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/minkms/minkms/cluster/health"
)

// logLines returns a logger that writes text lines without the time, and
// a function that returns (and forgets) the lines written so far.
func logLines() (*slog.Logger, func() []string) {
	var mu sync.Mutex
	var buf bytes.Buffer
	h := slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(h), func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := strings.TrimRight(buf.String(), "\n")
		buf.Reset()
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestFindingsLog: a sequence of evaluations logs each new or changed
// finding once (WARN; INFO for an info finding) in the words of its
// message, and each clearing once (INFO "Cleared: …"), and nothing for a
// finding that stays as it was, countdown included.
func TestFindingsLog(t *testing.T) {
	t3 := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	t3new := time.Date(2027, 3, 1, 4, 0, 0, 0, time.UTC)
	soon := func(left string, at time.Time, sev health.Severity) health.Finding {
		return health.Finding{Kind: health.CertExpiresSoon, Severity: sev, Nodes: []string{"n3"}, At: at, Message: "Certificate of node n3 expires in " + left}
	}
	risk := health.Finding{Kind: health.ConsensusAtRisk, Severity: health.Critical, Nodes: []string{"n2", "n3"}, At: t3,
		Message: "Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire"}
	reload := func(why string) health.Finding {
		return health.Finding{Kind: health.ReloadFailing, Severity: health.Warning, Nodes: []string{"n2"}, Message: "Certificate reload of node n2 fails: " + why}
	}
	skew := health.Finding{Kind: health.ClockSkew, Severity: health.Info, Nodes: []string{"n4"}, Message: "Clock of node n4 is 3s off"}

	const (
		soonAttrs = `kind=cert-expires-soon severity=warning nodes=n3 at=2026-12-01T04:00:00Z`
		riskAttrs = `kind=consensus-at-risk severity=critical nodes=n2,n3 at=2026-12-01T04:00:00Z`
	)
	steps := []struct {
		name     string
		findings []health.Finding
		want     []string
	}{
		{"New", []health.Finding{soon("36h", t3, health.Warning)}, []string{
			`level=WARN msg="Certificate of node n3 expires in 36h" ` + soonAttrs,
		}},
		{"Countdown", []health.Finding{soon("35h", t3, health.Warning)}, nil},
		{"Again", []health.Finding{soon("35h", t3, health.Warning)}, nil},
		{"AnotherFinding", []health.Finding{risk, soon("34h", t3, health.Warning)}, []string{
			`level=WARN msg="Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire" ` + riskAttrs,
		}},
		{"SeverityChanged", []health.Finding{risk, soon("33h", t3, health.Critical)}, []string{
			`level=WARN msg="Certificate of node n3 expires in 33h" kind=cert-expires-soon severity=critical nodes=n3 at=2026-12-01T04:00:00Z`,
		}},
		{"ExpiryChangedAndCleared", []health.Finding{soon("2184h", t3new, health.Warning)}, []string{
			`level=WARN msg="Certificate of node n3 expires in 2184h" kind=cert-expires-soon severity=warning nodes=n3 at=2027-03-01T04:00:00Z`,
			`level=INFO msg="Cleared: Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire" ` + riskAttrs,
		}},
		{"ReasonAndInfo", []health.Finding{reload("expired"), skew, soon("2183h", t3new, health.Warning)}, []string{
			`level=WARN msg="Certificate reload of node n2 fails: expired" kind=reload-failing severity=warning nodes=n2`,
			`level=INFO msg="Clock of node n4 is 3s off" kind=clock-skew severity=info nodes=n4`,
		}},
		{"ReasonChanged", []health.Finding{reload("san mismatch"), skew, soon("2182h", t3new, health.Warning)}, []string{
			`level=WARN msg="Certificate reload of node n2 fails: san mismatch" kind=reload-failing severity=warning nodes=n2`,
		}},
		{"AllCleared", nil, []string{
			`level=INFO msg="Cleared: Certificate of node n3 expires in 2184h" kind=cert-expires-soon severity=warning nodes=n3 at=2027-03-01T04:00:00Z`,
			`level=INFO msg="Cleared: Clock of node n4 is 3s off" kind=clock-skew severity=info nodes=n4`,
			`level=INFO msg="Cleared: Certificate reload of node n2 fails: san mismatch" kind=reload-failing severity=warning nodes=n2`,
		}},
		{"Quiet", nil, nil},
	}
	logger, lines := logLines()
	l := newFindingsLog(logger)
	for _, step := range steps {
		l.update(context.Background(), step.findings)
		if got := lines(); !slices.Equal(got, step.want) {
			t.Errorf("%s: logged\n%s\nwant\n%s", step.name, strings.Join(got, "\n"), strings.Join(step.want, "\n"))
		}
	}
}

// gather returns the samples of the cluster metrics as "name{labels} value"
// lines, sorted.
func gather(tb testing.TB, c prometheus.Collector) []string {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			out = append(out, sample(f.GetName(), m))
		}
	}
	slices.Sort(out)
	return out
}

func sample(name string, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	return name + "{" + strings.Join(labels, ",") + "} " + strconv.FormatFloat(m.GetGauge().GetValue(), 'f', -1, 64)
}

func TestClusterMetrics(t *testing.T) {
	in, res := statusFixture()
	c := new(clusterCollector)
	if got := gather(t, c); len(got) != 0 {
		t.Errorf("before the first evaluation: %q, want none", got)
	}
	c.update(in, res)
	want := []string{
		"minkms_cluster_consensus_at_risk_timestamp_seconds{} " + unix(expiryN3),
		"minkms_cluster_findings{finding=cert-expires-soon,node=n2,severity=warning} 1",
		"minkms_cluster_findings{finding=cert-expires-soon,node=n3,severity=warning} 1",
		"minkms_cluster_findings{finding=consensus-at-risk,node=n2,severity=critical} 1",
		"minkms_cluster_findings{finding=consensus-at-risk,node=n3,severity=critical} 1",
		"minkms_cluster_findings{finding=unreachable,node=n3,severity=warning} 1",
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=api,node=n1} " + unix(expiryN2.Add(48*time.Hour)),
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=api,node=n2} " + unix(expiryN2),
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=api,node=n3} " + unix(expiryN3),
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=peer,node=n1} " + unix(expiryFar),
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=peer,node=n2} " + unix(expiryN2),
		"minkms_cluster_node_cert_not_after_timestamp_seconds{listener=peer,node=n3} " + unix(expiryN3),
		"minkms_raft_applied_index{} 120",
		"minkms_raft_last_contact_seconds{node=n1} 0",
		"minkms_raft_last_contact_seconds{node=n2} 0.25",
		"minkms_raft_last_contact_seconds{node=n4} 2",
		"minkms_raft_leader{} 1",
		"minkms_raft_peers{suffrage=nonvoter} 1",
		"minkms_raft_peers{suffrage=voter} 3",
		"minkms_raft_state{state=candidate} 0",
		"minkms_raft_state{state=follower} 0",
		"minkms_raft_state{state=leader} 1",
	}
	if got := gather(t, c); !slices.Equal(got, want) {
		t.Errorf("metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("ClearedFindingsDisappear", func(t *testing.T) {
		in.Leader = "n2"
		in.Probes[0].Role = "follower"
		c.update(in, health.Result{Healthy: true})
		got := gather(t, c)
		for _, s := range got {
			if strings.HasPrefix(s, "minkms_cluster_findings") {
				t.Errorf("a cleared finding is still there: %s", s)
			}
		}
		for _, s := range []string{
			"minkms_cluster_consensus_at_risk_timestamp_seconds{} 0",
			"minkms_raft_leader{} 0",
			"minkms_raft_state{state=follower} 1",
			"minkms_raft_state{state=leader} 0",
		} {
			if !slices.Contains(got, s) {
				t.Errorf("missing %s in\n%s", s, strings.Join(got, "\n"))
			}
		}
	})
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// TestMonitor: an evaluation feeds the findings log and the metrics; a
// failed one changes neither; a poke evaluates at once.
func TestMonitor(t *testing.T) {
	in, res := statusFixture()
	src := &fakeHealth{in: in, res: res}
	logger, lines := logLines()
	metrics := new(clusterCollector)
	m := newMonitor(src, metrics, logger)
	m.interval = time.Hour // only the first evaluation and pokes

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.run(ctx); close(done) }()
	waitLines := func(n int) []string {
		t.Helper()
		var got []string
		deadline := time.Now().Add(5 * time.Second)
		for len(got) < n && time.Now().Before(deadline) {
			got = append(got, lines()...)
			time.Sleep(5 * time.Millisecond)
		}
		return got
	}
	if got := waitLines(4); len(got) != 4 || !strings.Contains(got[0], "Consensus at risk") {
		t.Fatalf("first evaluation logged %q, want the four findings", got)
	}
	if !slices.Contains(gather(t, metrics), "minkms_cluster_findings{finding=unreachable,node=n3,severity=warning} 1") {
		t.Error("the first evaluation did not update the metrics")
	}

	src.set(health.Result{}, errors.New("closing"))
	m.Poke()
	src.set(health.Result{Healthy: true}, nil)
	m.Poke()
	if got := waitLines(4); len(got) != 4 || !strings.Contains(got[0], "Cleared: ") {
		t.Errorf("after the findings cleared: %q, want four Cleared lines", got)
	}
	cancel()
	<-done
	if slices.ContainsFunc(gather(t, metrics), func(s string) bool { return strings.HasPrefix(s, "minkms_cluster_findings") }) {
		t.Error("cleared findings are still in the metrics")
	}

	t.Run("NoSource", func(t *testing.T) {
		m := newMonitor(nil, new(clusterCollector), logger)
		m.run(t.Context()) // returns at once
	})
}
