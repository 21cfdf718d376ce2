package cluster

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/health"
)

// What a node needs to judge the cluster's health comes from three places:
// the reports in the cluster state (report.go), a live probe of every
// member (its raft view and its clock), and what every member saw of the
// others in inter-node handshakes. The last two are asked of every member
// over Ask, so that any node sees what every node sees.

// The Ask methods of the health probes.
const (
	MethodProbe        = "health.probe"        // a member's raft view and clock: probeAnswer
	MethodObservations = "health.observations" // what a member saw of its peers: []wireObservation
)

// probeTimeout bounds one member's answer to a probe: a member that takes
// longer than the election timeout (at least 200ms) counts as unreachable,
// the same patience raft has with a leader.
func (n *Node) probeTimeout() time.Duration {
	return max(n.cfg.Timing.ElectionTimeout, 200*time.Millisecond)
}

// probeAnswer is a member's answer to MethodProbe.
type probeAnswer struct {
	NodeID      string        `json:"node_id"`
	Role        string        `json:"role"`
	Leader      string        `json:"leader"`
	Applied     uint64        `json:"applied"`
	LastContact time.Duration `json:"last_contact"`
	Clock       time.Time     `json:"clock"`
}

// wireObservation is a health.Observation on the wire.
type wireObservation struct {
	Observer    string    `json:"observer"`
	Peer        string    `json:"peer"`
	DialedHost  string    `json:"dialed_host,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	NotAfter    time.Time `json:"not_after"`
	At          time.Time `json:"at"`
	FailedAt    time.Time `json:"failed_at"`
	Failure     string    `json:"failure,omitempty"`
}

func (n *Node) registerProbes() {
	n.Handle(MethodProbe, func(context.Context, string, json.RawMessage) (any, error) {
		return n.probe(), nil
	})
	n.Handle(MethodObservations, func(context.Context, string, json.RawMessage) (any, error) {
		return n.observations(), nil
	})
}

// probe is this node's answer to MethodProbe.
func (n *Node) probe() probeAnswer {
	applied, _ := n.fsm.applied.get()
	leader, _ := n.Leader()
	a := probeAnswer{
		NodeID:  n.cfg.NodeID,
		Role:    strings.ToLower(n.raft.State().String()),
		Leader:  leader,
		Applied: applied,
		Clock:   time.Now().UTC(),
	}
	if a.Role != "leader" {
		a.LastContact = math.MaxInt64 // never heard from a leader
		if last := n.raft.LastContact(); !last.IsZero() {
			a.LastContact = time.Since(last)
		}
	}
	return a
}

// observations are this node's, as Config.Observations gives them.
func (n *Node) observations() []wireObservation {
	if n.cfg.Observations == nil {
		return []wireObservation{}
	}
	obs := n.cfg.Observations()
	out := make([]wireObservation, 0, len(obs))
	for _, o := range obs {
		if o.Observer == "" {
			o.Observer = n.cfg.NodeID
		}
		out = append(out, wireObservation(o))
	}
	return out
}

// Health evaluates the health of the cluster as this node sees it now
// (HealthInput): the findings, whether the cluster is healthy and from when
// consensus is at risk. It takes about a second at most, the bound of the
// probes.
func (n *Node) Health(ctx context.Context) health.Result {
	return health.Evaluate(n.HealthInput(ctx))
}

// HealthInput gathers what health.Evaluate judges, as this node sees it
// now: the raft configuration and leader, every report in the cluster
// state, a live probe of every member (each within a second; a member that
// does not answer has a Probe with Err), the handshake observations of
// every member that answers, and this node's timing and TLS settings.
// Observations that name a peer by its address are given the id of the
// member at that address.
func (n *Node) HealthInput(ctx context.Context) health.Input {
	own := n.ownReport()
	in := health.Input{
		Self:            n.cfg.NodeID,
		ElectionTimeout: n.cfg.Timing.ElectionTimeout,
		WarnBefore:      own.WarnBefore,
		ReloadInterval:  own.ReloadInterval,
	}
	in.Leader, _ = n.Leader()
	servers, err := n.servers()
	if err != nil {
		in.Now = time.Now()
		return in
	}
	byAddr := map[string]string{}
	for _, s := range servers {
		in.Members = append(in.Members, health.Member{ID: string(s.ID), PeerAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
		byAddr[string(s.Address)] = string(s.ID)
	}
	if in.Reports, err = n.Reports(); err != nil {
		in.Reports = map[string]health.NodeReport{}
	}

	// Each probe's clock is judged against when its answer came
	// (Probe.Received); Now is when they left.
	in.Now = time.Now()
	in.Probes = make([]health.Probe, len(servers))
	seen := make([][]wireObservation, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		id := string(s.ID)
		wg.Go(func() { in.Probes[i] = n.probeMember(ctx, id) })
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, n.probeTimeout())
			defer cancel()
			if n.Ask(cctx, id, MethodObservations, struct{}{}, &seen[i]) != nil {
				seen[i] = nil
			}
		})
	}
	wg.Wait()
	for i, obs := range seen {
		for _, o := range obs {
			if o.Observer == "" {
				o.Observer = string(servers[i].ID)
			}
			if id, ok := byAddr[o.Peer]; ok {
				o.Peer = id
			}
			in.Observations = mergeObservation(in.Observations, health.Observation(o))
		}
	}
	return in
}

// mergeObservation adds o to obs, or merges it into the observation of the
// same observer and peer (one kept by address before the peer's id was
// known): the later certificate and the later failure win.
func mergeObservation(obs []health.Observation, o health.Observation) []health.Observation {
	i := slices.IndexFunc(obs, func(x health.Observation) bool { return x.Observer == o.Observer && x.Peer == o.Peer })
	if i < 0 {
		return append(obs, o)
	}
	m := &obs[i]
	newer := o.At.After(m.At) || o.FailedAt.After(m.FailedAt)
	if o.DialedHost != "" && (m.DialedHost == "" || newer) {
		m.DialedHost = o.DialedHost
	}
	if o.At.After(m.At) {
		m.Fingerprint, m.NotAfter, m.At = o.Fingerprint, o.NotAfter, o.At
	}
	if o.FailedAt.After(m.FailedAt) {
		m.FailedAt, m.Failure = o.FailedAt, o.Failure
	}
	return obs
}

// probeMember asks member id for its probe and measures the round trip.
func (n *Node) probeMember(ctx context.Context, id string) health.Probe {
	ctx, cancel := context.WithTimeout(ctx, n.probeTimeout())
	defer cancel()
	var a probeAnswer
	start := time.Now()
	err := n.Ask(ctx, id, MethodProbe, struct{}{}, &a)
	p := health.Probe{NodeID: id, RTT: time.Since(start), Received: time.Now()}
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Role, p.Leader, p.Applied, p.LastContact, p.Clock = a.Role, a.Leader, a.Applied, a.LastContact, a.Clock
	return p
}
