package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Formation: a node without state forms or joins a cluster only as its
// config says, and only once.
//
//   - bootstrap: a cluster of this node alone. If join peers are listed, they
//     are asked first, and if one of them is in a cluster already this node
//     joins it instead, so that a restarted "first node" whose data was
//     wiped does not split off a second cluster.
//   - bootstrap_expect N with join: the nodes ask each other who they are
//     until N are known, then each of them bootstraps the identical
//     configuration of those N (raft's documented way: every server given
//     the same configuration). Any one may die early; the others wait.
//   - neither: join through the join peers, retried with backoff, or wait
//     to be added (minkms cluster add-node).

// formBackoff bounds the retries of formation.
const (
	formRetryMin = 500 * time.Millisecond
	formRetryMax = 10 * time.Second
)

// Formation returns what formation is waiting for, "" once the node is in a
// cluster.
func (n *Node) Formation() string {
	if n.inCluster() {
		return ""
	}
	return *n.formation.Load()
}

func (n *Node) setFormation(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if old := n.formation.Swap(&s); *old != s {
		n.logger.Info("Cluster formation: "+s, slog.String("node", n.cfg.NodeID))
	}
}

func (n *Node) form(ctx context.Context) {
	cfg := n.cfg
	switch {
	case cfg.Bootstrap && len(n.joinPeers()) > 0:
		if n.anyInCluster(ctx) {
			n.joinLoop(ctx)
			return
		}
		n.bootstrap([]raft.Server{n.self()})
	case cfg.Bootstrap:
		n.bootstrap([]raft.Server{n.self()})
	case cfg.BootstrapExpect > 0:
		n.expectLoop(ctx)
	case len(n.joinPeers()) > 0:
		n.joinLoop(ctx)
	default:
		n.setFormation("waiting to be added: run `minkms cluster add-node %s` against a member", cfg.PeerAddr)
	}
}

func (n *Node) self() raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.PeerAddr)}
}

// joinPeers are the join addresses other than this node's own.
func (n *Node) joinPeers() []string {
	var out []string
	for _, a := range n.cfg.Join {
		if a != n.cfg.PeerAddr && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (n *Node) bootstrap(servers []raft.Server) {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.setFormation("bootstrap failed: %v", err)
		n.logger.Error("Could not bootstrap the cluster", slog.Any("error", err))
		return
	}
	n.logger.Info("Bootstrapped a new cluster", slog.String("members", strings.Join(ids, ", ")),
		slog.String("node", n.cfg.NodeID))
}

// anyInCluster asks every join peer once whether it is in a cluster.
func (n *Node) anyInCluster(ctx context.Context) bool {
	for _, addr := range n.joinPeers() {
		var info nodeInfo
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.call(cctx, addr, methodInfo, struct{}{}, &info)
		cancel()
		if err == nil && info.InCluster {
			n.logger.Info("A join peer is in a cluster already: joining it instead of bootstrapping",
				slog.String("peer", addr), slog.String("peer_node", info.NodeID))
			return true
		}
	}
	return false
}

// expectLoop learns the other nodes until BootstrapExpect are known.
func (n *Node) expectLoop(ctx context.Context) {
	expect := n.cfg.BootstrapExpect
	if expect == 1 {
		n.bootstrap([]raft.Server{n.self()})
		return
	}
	retry := formRetryMin
	for {
		known := map[string]raft.Server{n.cfg.NodeID: n.self()}
		var problems []string
		for _, addr := range n.joinPeers() {
			var info nodeInfo
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := n.call(cctx, addr, methodInfo, struct{}{}, &info)
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", addr, err))
				continue
			case info.InCluster:
				n.logger.Info("A join peer is in a cluster already: joining it", slog.String("peer", addr))
				n.joinLoop(ctx)
				return
			case info.Expect != expect:
				problems = append(problems, fmt.Sprintf("%s (%s) expects %d nodes, this node %d", addr, info.NodeID, info.Expect, expect))
				continue
			case info.AdminsDigest != n.cfg.AdminsDigest:
				problems = append(problems, fmt.Sprintf("%s (%s) names other cluster admins", addr, info.NodeID))
				continue
			}
			if s, dup := known[info.NodeID]; dup && string(s.Address) != info.PeerAddr {
				problems = append(problems, fmt.Sprintf("node id %s is used at both %s and %s", info.NodeID, s.Address, info.PeerAddr))
				continue
			}
			known[info.NodeID] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(info.NodeID), Address: raft.ServerAddress(info.PeerAddr)}
		}
		if len(known) >= expect {
			servers := slices.SortedFunc(maps.Values(known), func(a, b raft.Server) int { return cmp.Compare(a.ID, b.ID) })
			n.bootstrap(servers)
			return
		}
		ids := slices.Sorted(maps.Keys(known))
		msg := fmt.Sprintf("waiting for bootstrap_expect: %d of %d nodes known (%s)", len(known), expect, strings.Join(ids, ", "))
		if len(problems) > 0 {
			msg += "; " + strings.Join(problems, "; ")
		}
		n.setFormation("%s", msg)
		if !n.sleep(ctx, &retry) {
			return
		}
	}
}

// joinLoop asks the join peers, in turn, to add this node, until one has or
// this node finds itself in a configuration (added by an operator).
func (n *Node) joinLoop(ctx context.Context) {
	retry := formRetryMin
	for {
		var problems []string
		for _, addr := range n.joinPeers() {
			if n.inCluster() {
				return
			}
			var resp memberResponse
			cctx, cancel := context.WithTimeout(ctx, membershipTimeout+2*time.Second)
			_, err := n.call(cctx, addr, methodJoin, joinRequest{NodeID: n.cfg.NodeID, PeerAddr: n.cfg.PeerAddr}, &resp)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				n.logger.Info("Joined the cluster", slog.String("through", addr), slog.String("node", n.cfg.NodeID))
				n.setFormation("joined through %s; waiting for the leader's log", addr)
				return
			}
			if errors.Is(err, ErrRefused) || errors.Is(err, ErrAlreadyMember) {
				n.logger.Error("The cluster refused to let this node join", slog.String("through", addr), slog.Any("error", err))
			}
			problems = append(problems, fmt.Sprintf("%s: %v", addr, err))
		}
		n.setFormation("joining through %s", strings.Join(problems, "; "))
		if !n.sleep(ctx, &retry) {
			return
		}
	}
}

// sleep waits *retry (doubling it up to formRetryMax) and reports false if
// ctx ended first.
func (n *Node) sleep(ctx context.Context, retry *time.Duration) bool {
	t := time.NewTimer(*retry)
	defer t.Stop()
	*retry = min(*retry*2, formRetryMax)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
