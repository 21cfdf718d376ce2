package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/kms"
)

// healthSource evaluates the health of the cluster as this node sees it:
// the facts it looked at (the members, their reports and live probes) and
// what health.Evaluate decided from them. Every node has one; the status
// route, the findings in the log and the cluster metrics all read it.
type healthSource interface {
	// Health gathers the facts now (probing every member, within a second
	// or so) and evaluates them. An error means there were no facts to
	// evaluate: this node is not in a cluster (yet), or is closing.
	Health(ctx context.Context) (health.Input, health.Result, error)
}

// clusterHealth returns the node's health source: the cluster node's own
// view (its HealthInput) evaluated by health.Evaluate.
func (s *Server) clusterHealth() healthSource {
	if n := s.node.Load(); n != nil {
		return nodeHealth{n}
	}
	return nil
}

// nodeHealth is healthSource over the cluster node.
type nodeHealth struct{ n *cluster.Node }

var errNotInCluster = errors.New("this node is not in a cluster yet")

func (h nodeHealth) Health(ctx context.Context) (health.Input, health.Result, error) {
	in := h.n.HealthInput(ctx)
	if len(in.Members) == 0 {
		return in, health.Result{}, errNotInCluster
	}
	return in, health.Evaluate(in), nil
}

// askNode asks one member of the cluster over the internal RPC; see
// cluster.Node.Ask. Its error wraps errNotMember for an id that is no
// member.
type askNode interface {
	Ask(ctx context.Context, id, method string, req, resp any) error
}

var _ askNode = (*cluster.Node)(nil)

// methodTLSStatus is the internal method by which one node asks another
// for its TLS status (GET /v1/tls/status?node=ID). Every node registers it.
const methodTLSStatus = "tls.status"

// askTimeout bounds asking another node on behalf of a client.
const askTimeout = 5 * time.Second

var errStatusUnavailable = &kms.Error{Code: kms.Unavailable, Message: "cluster status unavailable"}

// clusterStatus answers GET /v1/cluster/status: the cluster's health as
// this node evaluates it now.
func (h *handler) clusterStatus(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	if h.health == nil {
		return errStatusUnavailable
	}
	in, res, err := h.health.Health(r.Context())
	if err != nil {
		return &kms.Error{Code: kms.Unavailable, Message: "cluster status unavailable: " + err.Error()}
	}
	writeJSON(w, http.StatusOK, apiClusterStatus(in, res))
	return nil
}

// tlsStatusOfNode answers GET /v1/tls/status: this node's status, or with
// ?node=ID that of member ID, asked over the internal RPC.
func (h *handler) tlsStatusOfNode(w http.ResponseWriter, r *http.Request) error {
	if !r.URL.Query().Has("node") {
		return h.tlsStatus(w, r)
	}
	id := r.URL.Query().Get("node")
	if err := validNodeID(id); err != nil {
		return err
	}
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	if h.node != nil && id == h.node.ID() {
		return h.tlsStatus(w, r)
	}
	if h.peers == nil {
		return errClusterUnavailable
	}
	ctx, cancel := context.WithTimeout(r.Context(), askTimeout)
	defer cancel()
	var st api.TLSStatus
	if err := h.peers.Ask(ctx, id, methodTLSStatus, struct{}{}, &st); err != nil {
		if errors.Is(err, errNotMember) {
			return fmt.Errorf("%w: %s", errNotMember, id)
		}
		return &kms.Error{Code: kms.Unavailable, Message: fmt.Sprintf("node %s did not answer: %v", id, err)}
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// serveTLSStatus is the handler of methodTLSStatus: this node's TLS status
// in the wire types of the client API, for the member that asks.
func serveTLSStatus(certs certManager) cluster.Handler {
	return func(ctx context.Context, from string, req json.RawMessage) (any, error) {
		return apiTLSStatus(certs.Status()), nil
	}
}

// apiClusterStatus converts what the node looked at and what it decided
// into the wire type: one row per member of the raft configuration, from
// its probe and its report, and the findings.
func apiClusterStatus(in health.Input, res health.Result) api.ClusterStatus {
	probes := make(map[string]health.Probe, len(in.Probes))
	for _, p := range in.Probes {
		probes[p.NodeID] = p
	}
	out := api.ClusterStatus{
		Node:            in.Self,
		EvaluatedAt:     in.Now,
		Healthy:         res.Healthy,
		ConsensusAtRisk: res.ConsensusAtRisk,
		Members:         make([]api.ClusterStatusMember, 0, len(in.Members)),
		Findings:        make([]api.ClusterFinding, 0, len(res.Findings)),
	}
	for _, m := range in.Members {
		row := api.ClusterStatusMember{ID: m.ID, PeerAddress: m.PeerAddr, Voter: m.Voter, Leader: m.ID == in.Leader}
		switch p, ok := probes[m.ID]; {
		case !ok:
			row.Error = "not probed"
		case p.Err != "":
			row.Error = p.Err
		default:
			row.Reachable = true
			row.Role = p.Role
			row.LastContactSeconds = p.LastContact.Seconds()
			row.AppliedIndex = p.Applied
		}
		if rep, ok := in.Reports[m.ID]; ok {
			row.Reported = true
			row.APIAddress = rep.APIAddr
			row.Version = rep.Version
			row.ReportAgeSeconds = max(in.Now.Sub(rep.Time), 0).Round(time.Millisecond).Seconds()
			row.CertNotAfter = reportNotAfter(rep)
		}
		out.Members = append(out.Members, row)
	}
	slices.SortFunc(out.Members, func(a, b api.ClusterStatusMember) int { return cmp.Compare(a.ID, b.ID) })
	for _, f := range res.Findings {
		nodes := slices.Clone(f.Nodes)
		if nodes == nil {
			nodes = []string{}
		}
		out.Findings = append(out.Findings, api.ClusterFinding{
			Kind: string(f.Kind), Severity: string(f.Severity), Nodes: nodes, At: f.At, Message: f.Message,
		})
	}
	return out
}

// reportNotAfter returns the earliest effective expiry of a node's served
// certificates, zero if it reports none.
func reportNotAfter(r health.NodeReport) time.Time {
	var first time.Time
	for _, p := range r.Pairs {
		t := pairNotAfter(p)
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// pairNotAfter is a pair's effective expiry, or its leaf's when the
// effective one is not known.
func pairNotAfter(p health.CertReport) time.Time {
	if !p.EffectiveNotAfter.IsZero() {
		return p.EffectiveNotAfter
	}
	return p.NotAfter
}
