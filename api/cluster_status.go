package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// The status route is about the cluster as a whole, as the member that
// answers sees it: every member reports its certificates into the cluster
// state, and the member that answers probes every other one live, so any
// member answers with the same findings. Only a cluster admin may ask.

// The severities of a finding, from least to most urgent.
const (
	SeverityInfo     = "info"     // worth knowing
	SeverityWarning  = "warning"  // one node's problem
	SeverityCritical = "critical" // consensus is lost, or would be within tls.warn_before
)

// ClusterStatus is the answer of GET /v1/cluster/status.
type ClusterStatus struct {
	Node        string    `json:"node"`         // the member that answered and evaluated
	EvaluatedAt time.Time `json:"evaluated_at"` // its clock when it evaluated
	// Healthy holds when every member is reachable and caught up, no
	// certificate reload fails and no finding is critical. Expiry warnings
	// alone do not make a cluster unhealthy.
	Healthy bool `json:"healthy"`
	// ConsensusAtRisk is the earliest moment at which fewer than a quorum
	// of voters would hold a valid certificate; absent when there is none.
	ConsensusAtRisk time.Time             `json:"consensus_at_risk,omitzero"`
	Members         []ClusterStatusMember `json:"members"`  // ordered by id
	Findings        []ClusterFinding      `json:"findings"` // most severe first; empty when nothing is wrong
}

// ClusterStatusMember is one member of the cluster in ClusterStatus.
type ClusterStatusMember struct {
	ID          string `json:"id"`
	PeerAddress string `json:"peer_address"`
	APIAddress  string `json:"api_address"` // "" if the node has not reported it
	Voter       bool   `json:"voter"`
	Role        string `json:"role"`   // "leader", "follower" or "candidate"; "" when not reachable
	Leader      bool   `json:"leader"` // the member is the leader, as the answering member knows it
	Reachable   bool   `json:"reachable"`
	Error       string `json:"error,omitempty"` // why it is not reachable
	// LastContactSeconds is the time since the member last heard from the
	// leader, in seconds (0 on the leader itself).
	LastContactSeconds float64 `json:"last_contact_seconds"`
	AppliedIndex       uint64  `json:"applied_index"`
	// CertNotAfter is the member's earliest effective certificate expiry
	// (the NotAfter of its chains), from its report; absent without one.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	Reported     bool      `json:"reported"` // the cluster state holds a report of the member
	// ReportAgeSeconds is the age of that report, in seconds.
	ReportAgeSeconds float64 `json:"report_age_seconds"`
	Version          string  `json:"version,omitempty"` // the minkms version the member reported
}

// ClusterFinding is one thing wrong, or worth knowing, about the cluster.
// The kinds are listed in docs/monitoring.md with what to do about each.
type ClusterFinding struct {
	Kind     string    `json:"kind"`     // "cert-expires-soon", "consensus-at-risk", …
	Severity string    `json:"severity"` // SeverityInfo, SeverityWarning or SeverityCritical
	Nodes    []string  `json:"nodes"`    // the nodes it is about, sorted
	At       time.Time `json:"at,omitzero"`
	Message  string    `json:"message"` // as the nodes log it
}

// ClusterStatus returns the status of the cluster, as the member that
// answers sees it: every member with its role, reachability, applied
// index, certificate expiry and report, and the findings. It is a read:
// like the other reads it moves on to the next endpoint when one does not
// answer. Only a cluster admin may ask; anyone else gets ErrNotAllowed.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var v ClusterStatus
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/cluster/status"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// NodeTLSStatus returns the TLS state of the member named id, as TLSStatus
// does for the node that answers: whichever endpoint answers asks that
// member over the cluster's internal connections. An id that is no member
// gives an *Error with status 404; a member that cannot be asked now, 503.
// Only a cluster admin may ask; anyone else gets ErrNotAllowed.
func (c *Client) NodeTLSStatus(ctx context.Context, id string) (*TLSStatus, error) {
	var v TLSStatus
	path := "/v1/tls/status?" + url.Values{"node": {id}}.Encode()
	if err := c.do(ctx, request{method: http.MethodGet, path: path}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
