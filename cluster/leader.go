package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/storage/kv"
)

// The cluster's own area of the replicated state; kms never reads or
// writes it.
const (
	clusterBucket = "cluster"
	clusterIDName = "id"
	nodesBucket   = "cluster/nodes"
)

// maintainInterval is the period of the background upkeep: the cluster id,
// this node's report, and on the leader the promotion of caught-up
// non-voters.
const maintainInterval = time.Second

// leaderLoop runs OnLeader while this node leads, and the upkeep.
func (n *Node) leaderLoop() {
	tick := time.NewTicker(maintainInterval)
	defer tick.Stop()
	var term leadership
	defer term.end()
	for {
		select {
		case <-n.done:
			return
		case isLeader := <-n.raft.LeaderCh():
			term.end()
			if isLeader {
				ctx := term.begin()
				if n.cfg.OnLeader != nil {
					n.wg.Go(func() { n.cfg.OnLeader(ctx) })
				}
				n.maintain(ctx)
			}
		case <-n.cfg.ReportTrigger:
			ctx, cancel := context.WithTimeout(context.Background(), maintainInterval)
			n.ensureReport(ctx)
			cancel()
		case <-tick.C:
			if ctx := term.ctx; ctx != nil {
				n.maintain(ctx)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), maintainInterval)
			n.maintain(ctx)
			cancel()
		}
	}
}

// leadership is the context of one period of leading.
type leadership struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (l *leadership) begin() context.Context {
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l.ctx
}

func (l *leadership) end() {
	if l.cancel != nil {
		l.cancel()
	}
	l.ctx, l.cancel = nil, nil
}

// maintain does one round of upkeep.
func (n *Node) maintain(ctx context.Context) {
	if !n.inCluster() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n.IsLeader() {
		if err := n.ensureClusterID(ctx); err != nil {
			n.logger.Warn("Could not record the cluster id", slog.Any("error", err))
		}
		n.promote(ctx)
	}
	n.ensureReport(ctx)
}

// ClusterID returns the id the first leader of the cluster recorded, "" if
// this node has not applied it (yet).
func (n *Node) ClusterID() string {
	if p := n.clusterID.Load(); p != nil {
		return *p
	}
	e, err := n.cfg.Store.Get(clusterBucket, clusterIDName)
	if err != nil {
		return ""
	}
	var rec struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(e.Value, &rec) != nil || rec.ID == "" {
		return ""
	}
	n.clusterID.Store(&rec.ID)
	return rec.ID
}

// ensureClusterID records a new cluster id, once: the first leader's
// proposal wins, later ones fail their precondition.
func (n *Node) ensureClusterID(ctx context.Context) error {
	if n.ClusterID() != "" {
		return nil
	}
	var b [12]byte
	rand.Read(b[:])
	rec, _ := json.Marshal(struct {
		ID      string    `json:"id"`
		Created time.Time `json:"created"`
	}{"c-" + hex.EncodeToString(b[:]), time.Now().UTC()})
	err := n.Propose(ctx, kv.Change{
		Require: []kv.Condition{{Kind: kv.MustNotExist, Bucket: clusterBucket, Name: clusterIDName}},
		Apply:   []kv.Mutation{{Kind: kv.Put, Bucket: clusterBucket, Name: clusterIDName, Value: rec}},
	})
	var ce *kv.ConditionError
	if err != nil && !errors.As(err, &ce) {
		return err
	}
	if id := n.ClusterID(); id != "" {
		n.logger.Info("This node belongs to cluster "+id, slog.String("cluster_id", id))
	}
	return nil
}

// forgetReport deletes the report of a node that left.
func (n *Node) forgetReport(ctx context.Context, id string) {
	err := n.Propose(ctx, kv.Change{
		Apply: []kv.Mutation{{Kind: kv.Delete, Bucket: nodesBucket, Name: id}},
	})
	if err != nil {
		n.logger.Warn("Could not delete the report of a removed node", slog.String("node", id), slog.Any("error", err))
	}
}

// statusResponse is a node's raft view as another node asks for it.
type statusResponse struct {
	NodeID  string `json:"node_id"`
	Applied uint64 `json:"applied"`
	State   string `json:"state"`
}

func (n *Node) serveStatus(context.Context, peernet.Peer, json.RawMessage) (any, error) {
	applied, _ := n.fsm.applied.get()
	return statusResponse{NodeID: n.cfg.NodeID, Applied: applied, State: n.raft.State().String()}, nil
}

// promote makes the non-voters that have caught up voters: a node counts
// for the quorum only once it holds what the leader had applied when it
// was asked (as etcd's learners and Consul's autopilot do).
func (n *Node) promote(ctx context.Context) {
	servers, err := n.servers()
	if err != nil {
		return
	}
	for _, s := range servers {
		if s.Suffrage != raft.Nonvoter {
			continue
		}
		target, _ := n.fsm.applied.get()
		var st statusResponse
		if _, err := n.call(ctx, string(s.Address), methodStatus, struct{}{}, &st); err != nil {
			n.logger.Debug("Could not ask a non-voter how far it is", slog.String("node", string(s.ID)), slog.Any("error", err))
			continue
		}
		if st.NodeID != string(s.ID) || st.Applied < target {
			continue
		}
		if err := await(ctx, n.raft.AddVoter(s.ID, s.Address, 0, membershipTimeout)); err != nil {
			n.logger.Warn("Could not promote a caught-up node to voter", slog.String("node", string(s.ID)), slog.Any("error", err))
			continue
		}
		n.logger.Info("Promoted a node to voter: it has caught up", slog.String("node", string(s.ID)))
	}
}
