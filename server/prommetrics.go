package server

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/kms"
)

// The cluster's health as Prometheus metrics, from the node's periodic
// evaluation (monitor.go). docs/monitoring.md documents each and gives the
// alert rules.
var (
	consensusAtRiskDesc = prometheus.NewDesc("minkms_cluster_consensus_at_risk_timestamp_seconds",
		"The earliest moment, in Unix seconds, at which fewer than a quorum of voters would hold a valid certificate; 0 when consensus is not at risk.", nil, nil)
	nodeCertNotAfterDesc = prometheus.NewDesc("minkms_cluster_node_cert_not_after_timestamp_seconds",
		`Effective expiry of a member's certificate as it reports it, in Unix seconds: listener="peer" is the one it presents to the other nodes, listener="api" the earliest it serves to clients.`,
		[]string{"node", "listener"}, nil)
	findingsDesc = prometheus.NewDesc("minkms_cluster_findings",
		"1 for every finding of the last evaluation of the cluster's health, per node it is about; a cleared finding disappears.",
		[]string{"finding", "node", "severity"}, nil)
	raftStateDesc = prometheus.NewDesc("minkms_raft_state",
		"1 for this node's raft role (leader, follower or candidate), 0 for the others.", []string{"state"}, nil)
	raftLeaderDesc = prometheus.NewDesc("minkms_raft_leader",
		"1 if this node is the raft leader, else 0.", nil, nil)
	raftAppliedDesc = prometheus.NewDesc("minkms_raft_applied_index",
		"The last raft index this node applied.", nil, nil)
	raftLastContactDesc = prometheus.NewDesc("minkms_raft_last_contact_seconds",
		"Seconds since each reachable member last heard from the leader (0 on the leader), as probed by this node.", []string{"node"}, nil)
	raftPeersDesc = prometheus.NewDesc("minkms_raft_peers",
		"Members of the raft configuration by suffrage (voter, nonvoter), this node included.", []string{"suffrage"}, nil)
)

// raftRoles are the values of minkms_raft_state's label.
var raftRoles = []string{"leader", "follower", "candidate"}

// clusterCollector serves the metrics of the last evaluation. An
// evaluation replaces all of them at once, so a scrape never sees half of
// one, and a finding that cleared is gone from the next scrape.
type clusterCollector struct {
	mu      sync.Mutex
	metrics []prometheus.Metric // nil before the first evaluation
}

var _ prometheus.Collector = (*clusterCollector)(nil)

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consensusAtRiskDesc, nodeCertNotAfterDesc, findingsDesc,
		raftStateDesc, raftLeaderDesc, raftAppliedDesc, raftLastContactDesc, raftPeersDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	ms := c.metrics
	c.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

// update replaces the metrics with those of one evaluation.
func (c *clusterCollector) update(in health.Input, res health.Result) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
		return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var ms []prometheus.Metric
	atRisk := 0.0
	if !res.ConsensusAtRisk.IsZero() {
		atRisk = float64(res.ConsensusAtRisk.Unix())
	}
	ms = append(ms, gauge(consensusAtRiskDesc, atRisk))

	members := make(map[string]bool, len(in.Members))
	voters, nonvoters := 0, 0
	for _, m := range in.Members {
		members[m.ID] = true
		if m.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	ms = append(ms, gauge(raftPeersDesc, float64(voters), "voter"), gauge(raftPeersDesc, float64(nonvoters), "nonvoter"))
	for id, rep := range in.Reports {
		if !members[id] || len(rep.Pairs) == 0 {
			continue
		}
		if t := pairNotAfter(rep.Pairs[0]); !t.IsZero() {
			ms = append(ms, gauge(nodeCertNotAfterDesc, float64(t.Unix()), id, "peer"))
		}
		if t := reportNotAfter(rep); !t.IsZero() {
			ms = append(ms, gauge(nodeCertNotAfterDesc, float64(t.Unix()), id, "api"))
		}
	}

	seen := make(map[[3]string]bool)
	for _, f := range res.Findings {
		nodes := f.Nodes
		if len(nodes) == 0 {
			nodes = []string{""}
		}
		for _, n := range nodes {
			k := [3]string{string(f.Kind), n, string(f.Severity)}
			if seen[k] {
				continue // two findings of a kind about one node: one series
			}
			seen[k] = true
			ms = append(ms, gauge(findingsDesc, 1, k[:]...))
		}
	}

	role := ""
	for _, p := range in.Probes {
		if p.Err != "" {
			continue
		}
		ms = append(ms, gauge(raftLastContactDesc, p.LastContact.Seconds(), p.NodeID))
		if p.NodeID == in.Self {
			role = p.Role
			ms = append(ms, gauge(raftAppliedDesc, float64(p.Applied)))
		}
	}
	for _, r := range raftRoles {
		ms = append(ms, gauge(raftStateDesc, boolValue(r == role), r))
	}
	ms = append(ms, gauge(raftLeaderDesc, boolValue(in.Self != "" && in.Leader == in.Self)))

	c.mu.Lock()
	c.metrics = ms
	c.mu.Unlock()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// authorizeMetrics lets cluster admins and the identities whose policy
// allows "metrics:read" through to GET /metrics.
func (h *handler) authorizeMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.svc.AuthorizeNode(r.Context(), callerOf(r.Context()), kms.ActionMetricsRead, h.node.ID()); err != nil {
			writeError(w, r, h.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
