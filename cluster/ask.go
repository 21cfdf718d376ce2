package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/minkms/minkms/cluster/peernet"
)

// One way to ask another node: cluster status, logs and per-node
// certificate status are all "ask node X" or "ask every node" calls over
// the internal RPC. A method is registered on every node with Handle; Ask
// calls it on one member, AskAll on every member at once, this node
// included (answered in-process).

// Handler serves a method that other nodes Ask. from is the id of the
// member that asks (proven by the inter-node channel); req is its JSON
// request. The answer is encoded as JSON.
type Handler func(ctx context.Context, from string, req json.RawMessage) (any, error)

// Answer is one member's reply to AskAll.
type Answer struct {
	NodeID string
	Result json.RawMessage // the handler's answer; nil on error
	Err    error           // the node could not be asked, did not answer in time, or its handler failed
}

// askPrefix keeps the methods of Handle apart from the cluster's own.
const askPrefix = "ask."

// Handle registers h for method on this node. Only members may ask.
func (n *Node) Handle(method string, h Handler) {
	n.askMu.Lock()
	n.askers[method] = h
	n.askMu.Unlock()
	if n.cfg.RPC == nil {
		return
	}
	n.handle(askPrefix+method, func(ctx context.Context, from peernet.Peer, req json.RawMessage) (any, error) {
		if !n.isMember(from.NodeID) {
			return nil, fmt.Errorf("%w: node %s is not a member and may not ask %s", ErrRefused, from.NodeID, method)
		}
		return h(ctx, from.NodeID, req)
	})
}

// Ask calls method on the member id and decodes its answer into resp. It
// returns ErrNotMember for an id that is not a member.
func (n *Node) Ask(ctx context.Context, id, method string, req, resp any) error {
	addr, ok := n.memberAddr(id)
	if !ok {
		return fmt.Errorf("ask %s: %w: %s", method, ErrNotMember, id)
	}
	if id == n.cfg.NodeID {
		raw, err := n.askLocal(ctx, method, req)
		if err != nil {
			return err
		}
		if resp != nil {
			return json.Unmarshal(raw, resp)
		}
		return nil
	}
	_, err := n.call(ctx, addr, askPrefix+method, req, resp)
	if err != nil {
		return fmt.Errorf("ask node %s: %w", id, err)
	}
	return nil
}

// AskAll calls method on every member at once, each within timeout (and
// ctx), and returns one Answer per member, in the order of the raft
// configuration. A member that is down or slow gets an Answer with Err;
// the others are not held up by it.
func (n *Node) AskAll(ctx context.Context, method string, req any, timeout time.Duration) []Answer {
	servers, err := n.servers()
	if err != nil {
		return []Answer{{NodeID: n.cfg.NodeID, Err: err}}
	}
	out := make([]Answer, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		out[i].NodeID = string(s.ID)
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var raw json.RawMessage
			if err := n.Ask(cctx, string(s.ID), method, req, &raw); err != nil {
				out[i].Err = err
				return
			}
			out[i].Result = raw
		})
	}
	wg.Wait()
	return out
}

// askLocal answers this node's own Ask without the network, with the same
// JSON round trip as a remote one.
func (n *Node) askLocal(ctx context.Context, method string, req any) (json.RawMessage, error) {
	n.askMu.Lock()
	h := n.askers[method]
	n.askMu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("ask %s: no such method on this node", method)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	res, err := h(ctx, n.cfg.NodeID, body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (n *Node) memberAddr(id string) (string, bool) {
	servers, err := n.servers()
	if err != nil {
		return "", false
	}
	for _, s := range servers {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}
