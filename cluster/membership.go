package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/peernet"
)

// Member is one server of the raft configuration.
type Member struct {
	ID       string
	PeerAddr string
	APIAddr  string // as the node reported it; "" until it has
	Voter    bool   // false: a non-voter that catches up before it is promoted
	Leader   bool
}

// membershipTimeout bounds one change of the raft configuration.
const membershipTimeout = 10 * time.Second

func (n *Node) servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read the raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// isMember reports whether id is in the raft configuration this node knows.
func (n *Node) isMember(id string) bool {
	servers, err := n.servers()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == raft.ServerID(id) })
}

// inCluster reports whether this node belongs to a cluster: it has a raft
// configuration that names it.
func (n *Node) inCluster() bool { return n.isMember(n.cfg.NodeID) }

// Members returns the members of the cluster as this node knows them.
func (n *Node) Members(ctx context.Context) ([]Member, error) {
	servers, err := n.servers()
	if err != nil {
		return nil, err
	}
	leader, _ := n.Leader()
	out := make([]Member, 0, len(servers))
	for _, s := range servers {
		m := Member{
			ID:       string(s.ID),
			PeerAddr: string(s.Address),
			Voter:    s.Suffrage == raft.Voter,
			Leader:   string(s.ID) == leader,
		}
		if r, err := n.Report(string(s.ID)); err == nil {
			m.APIAddr = r.APIAddr
		}
		out = append(out, m)
	}
	return out, nil
}

// nodeInfo is what a node says of itself over the proven channel: the
// leader learns a new node's id and addresses from it before adding it.
type nodeInfo struct {
	NodeID       string `json:"node_id"`
	PeerAddr     string `json:"peer_addr"`
	APIAddr      string `json:"api_addr"`
	ClusterID    string `json:"cluster_id,omitempty"`
	AdminsDigest string `json:"admins_digest"`
	InCluster    bool   `json:"in_cluster"`
	Expect       int    `json:"bootstrap_expect,omitempty"`
}

func (n *Node) info() nodeInfo {
	return nodeInfo{
		NodeID:       n.cfg.NodeID,
		PeerAddr:     n.cfg.PeerAddr,
		APIAddr:      n.cfg.APIAddr,
		ClusterID:    n.ClusterID(),
		AdminsDigest: n.cfg.AdminsDigest,
		InCluster:    n.inCluster(),
		Expect:       n.cfg.BootstrapExpect,
	}
}

func (n *Node) serveInfo(context.Context, peernet.Peer, json.RawMessage) (any, error) {
	return n.info(), nil
}

// AddNode adds the node listening on peerAddr (host:port of its inter-node
// listener) as a non-voter; the leader promotes it to voter once it has
// caught up. Any member may be asked; the leader does the work. The leader
// dials the node, so its certificate must name the host of peerAddr and it
// must prove the root key; it must not belong to another cluster and must
// name the same cluster admins. An id or address that is a member already
// is refused with ErrAlreadyMember (raft would silently move a voter).
func (n *Node) AddNode(ctx context.Context, peerAddr string) (Member, error) {
	return n.addThroughLeader(ctx, addRequest{PeerAddr: peerAddr})
}

type addRequest struct {
	PeerAddr string `json:"peer_addr"`
	NodeID   string `json:"node_id,omitempty"` // the id the node announced, if it asked itself
}

type memberResponse struct {
	ID       string `json:"id"`
	PeerAddr string `json:"peer_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
}

func (n *Node) addThroughLeader(ctx context.Context, req addRequest) (Member, error) {
	if _, _, err := net.SplitHostPort(req.PeerAddr); err != nil {
		return Member{}, fmt.Errorf("add node: %w: %q is not host:port", ErrRefused, req.PeerAddr)
	}
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	for {
		changed := n.leaderChanged()
		id, addr := n.Leader()
		var (
			m   Member
			err error
		)
		switch {
		case n.IsLeader():
			m, err = n.addNode(ctx, req)
		case id != "" && n.cfg.RPC != nil:
			var resp memberResponse
			_, err = n.call(ctx, addr, methodAdd, req, &resp)
			m = Member{ID: resp.ID, PeerAddr: resp.PeerAddr, APIAddr: resp.APIAddr, Voter: resp.Voter}
			if errors.Is(err, peernet.ErrUnreachable) {
				err = fmt.Errorf("%w: %w", errNotLeader, err)
			}
		default:
			err = errNotLeader
		}
		if !errors.Is(err, errNotLeader) {
			return m, err
		}
		if err := n.waitChange(ctx, changed); err != nil {
			return Member{}, fmt.Errorf("add node: %w", err)
		}
	}
}

// addNode is the leader's part of AddNode and of a join.
func (n *Node) addNode(ctx context.Context, req addRequest) (Member, error) {
	var info nodeInfo
	_, err := n.call(ctx, req.PeerAddr, methodInfo, struct{}{}, &info)
	if err != nil {
		err = fmt.Errorf("%w: cannot verify the node at %s: %w", ErrRefused, req.PeerAddr, err)
		n.logger.Warn("Refused to add a node", slog.String("peer_address", req.PeerAddr), slog.Any("error", err))
		return Member{}, err
	}
	if err := n.vet(req, info); err != nil {
		n.logger.Warn("Refused to add a node", slog.String("node", info.NodeID), slog.String("peer_address", req.PeerAddr), slog.Any("error", err))
		return Member{}, err
	}
	m := Member{ID: info.NodeID, PeerAddr: req.PeerAddr, APIAddr: info.APIAddr}
	servers, err := n.servers()
	if err != nil {
		return Member{}, err
	}
	for _, s := range servers {
		sameID, sameAddr := string(s.ID) == info.NodeID, string(s.Address) == req.PeerAddr
		switch {
		case sameID && sameAddr && req.NodeID != "":
			m.Voter = s.Suffrage == raft.Voter
			return m, nil // the node asks to join again after a restart: nothing to do
		case sameID && sameAddr:
			return Member{}, fmt.Errorf("%w: node %s is a member already, at %s", ErrAlreadyMember, info.NodeID, s.Address)
		case sameID:
			return Member{}, fmt.Errorf("%w: node id %s is a member already, at %s; remove it first (minkms cluster remove-node %s) to move it",
				ErrAlreadyMember, info.NodeID, s.Address, info.NodeID)
		case sameAddr:
			return Member{}, fmt.Errorf("%w: address %s belongs to member %s already", ErrAlreadyMember, req.PeerAddr, s.ID)
		}
	}
	f := n.raft.AddNonvoter(raft.ServerID(info.NodeID), raft.ServerAddress(req.PeerAddr), 0, membershipTimeout)
	if err := await(ctx, f); err != nil {
		return Member{}, fmt.Errorf("add node %s: %w", info.NodeID, raftError(err))
	}
	n.logger.Info("Added a node as a non-voter; it becomes a voter once it has caught up",
		slog.String("node", info.NodeID), slog.String("peer_address", req.PeerAddr))
	return m, nil
}

// vet checks what a node said of itself against the cluster's rules.
func (n *Node) vet(req addRequest, info nodeInfo) error {
	switch {
	case req.NodeID != "" && info.NodeID != req.NodeID:
		return fmt.Errorf("%w: the node at %s is %s, not %s as it announced", ErrRefused, req.PeerAddr, info.NodeID, req.NodeID)
	case info.PeerAddr != req.PeerAddr:
		return fmt.Errorf("%w: node %s was reached at %s but advertises %s; set its cluster.advertise_peer to the address the others dial",
			ErrRefused, info.NodeID, req.PeerAddr, info.PeerAddr)
	case info.ClusterID != "" && info.ClusterID != n.ClusterID():
		return fmt.Errorf("%w: node %s belongs to cluster %s, not %s", ErrRefused, info.NodeID, info.ClusterID, n.ClusterID())
	case info.AdminsDigest != n.cfg.AdminsDigest:
		return fmt.Errorf("%w: the cluster admins in node %s's config differ from this cluster's; every member must name the same admins", ErrRefused, info.NodeID)
	}
	return nil
}

func (n *Node) serveAdd(ctx context.Context, from peernet.Peer, body json.RawMessage) (any, error) {
	var req addRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if !n.isMember(from.NodeID) {
		return nil, fmt.Errorf("%w: node %s is not a member and may not add nodes", ErrRefused, from.NodeID)
	}
	if !n.IsLeader() {
		return nil, errNotLeader
	}
	m, err := n.addNode(ctx, req)
	if err != nil {
		return nil, err
	}
	return memberResponse{ID: m.ID, PeerAddr: m.PeerAddr, APIAddr: m.APIAddr, Voter: m.Voter}, nil
}

// joinRequest is what a node sends to join through a member.
type joinRequest struct {
	NodeID   string `json:"node_id"`
	PeerAddr string `json:"peer_addr"`
}

// serveJoin answers a node that asks to be added: it must be the node it
// proved to be, and it goes through the same steps as AddNode.
func (n *Node) serveJoin(ctx context.Context, from peernet.Peer, body json.RawMessage) (any, error) {
	var req joinRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.NodeID != from.NodeID {
		return nil, fmt.Errorf("%w: the node proved to be %s but asks to join as %s", ErrRefused, from.NodeID, req.NodeID)
	}
	if !n.inCluster() {
		return nil, fmt.Errorf("%w: node %s is not in a cluster yet", errNotLeader, n.cfg.NodeID)
	}
	m, err := n.addThroughLeader(ctx, addRequest{PeerAddr: req.PeerAddr, NodeID: req.NodeID})
	if err != nil {
		return nil, err
	}
	return memberResponse{ID: m.ID, PeerAddr: m.PeerAddr, APIAddr: m.APIAddr, Voter: m.Voter}, nil
}

// RemoveNode removes the member id from the cluster, also one that is down.
// Any member may be asked; the leader does the work. An id that is not a
// member is refused with ErrNotMember.
func (n *Node) RemoveNode(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	for {
		changed := n.leaderChanged()
		leader, addr := n.Leader()
		var err error
		switch {
		case n.IsLeader():
			err = n.removeNode(ctx, id)
		case leader != "" && n.cfg.RPC != nil:
			_, err = n.call(ctx, addr, methodRemove, removeRequest{NodeID: id}, nil)
			if errors.Is(err, peernet.ErrUnreachable) {
				err = fmt.Errorf("%w: %w", errNotLeader, err)
			}
		default:
			err = errNotLeader
		}
		if !errors.Is(err, errNotLeader) {
			return err
		}
		if err := n.waitChange(ctx, changed); err != nil {
			return fmt.Errorf("remove node: %w", err)
		}
	}
}

type removeRequest struct {
	NodeID string `json:"node_id"`
}

func (n *Node) removeNode(ctx context.Context, id string) error {
	if !n.isMember(id) {
		return fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	if err := await(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, membershipTimeout)); err != nil {
		return fmt.Errorf("remove node %s: %w", id, raftError(err))
	}
	n.logger.Info("Removed a node from the cluster", slog.String("node", id))
	if id != n.cfg.NodeID {
		n.forgetReport(ctx, id)
	}
	return nil
}

func (n *Node) serveRemove(ctx context.Context, from peernet.Peer, body json.RawMessage) (any, error) {
	var req removeRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if !n.isMember(from.NodeID) {
		return nil, fmt.Errorf("%w: node %s is not a member and may not remove nodes", ErrRefused, from.NodeID)
	}
	if !n.IsLeader() {
		return nil, errNotLeader
	}
	return struct{}{}, n.removeNode(ctx, req.NodeID)
}

// Admit decides whether a peer that proved the root key may connect (the
// peer listener calls it for both directions; peernet has compared the
// cluster ids already). A member's certificate must name the host of its
// address in the raft configuration; a node that is not a member yet (one
// being added or joining) must name the host it announces.
func (n *Node) Admit(p peernet.Peer, dialed bool) error {
	host := hostOf(p.PeerAddr)
	if n.raft != nil {
		if servers, err := n.servers(); err == nil {
			for _, s := range servers {
				if string(s.ID) == p.NodeID {
					host = hostOf(string(s.Address))
				}
			}
		}
	}
	if p.Cert == nil {
		return fmt.Errorf("%w: node %s presented no certificate", ErrRefused, p.NodeID)
	}
	if err := p.Cert.VerifyHostname(host); err != nil {
		return fmt.Errorf("%w: the certificate of node %s does not name its advertised host %s: %w", ErrRefused, p.NodeID, host, err)
	}
	return nil
}
