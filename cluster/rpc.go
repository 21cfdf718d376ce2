package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/storage/kv"
)

// RPC is the internal RPC between the nodes of a cluster: *peernet.Network
// over the mutually authenticated inter-node listener, or an in-memory
// stand-in in tests. A handler error that is a peernet.CodedError reaches
// the caller as a *peernet.RemoteError with the same code and detail.
type RPC interface {
	Handle(method string, h peernet.Handler)
	Call(ctx context.Context, addr, method string, req, resp any) (peernet.Peer, error)
}

// The internal RPC methods of the cluster package.
const (
	methodApply     = "raft.apply"      // a follower forwards a write to the leader
	methodReadIndex = "raft.read_index" // the leader's applied index, leadership verified
	methodInfo      = "node.info"       // who a node is and whether it is in a cluster
	methodStatus    = "node.status"     // a node's raft view (promotion, status)
	methodJoin      = "cluster.join"    // a node asks to be added
	methodAdd       = "cluster.add"     // a member asks the leader to add a node
	methodRemove    = "cluster.remove"  // a member asks the leader to remove a node
)

// The codes of cluster errors on the wire. They never change meaning.
const (
	codeNotLeader      = "not-leader"
	codeNoLeader       = "no-leader"
	codeOutcomeUnknown = "outcome-unknown"
	codeOverloaded     = "overloaded"
	codeCondition      = "condition-failed"
	codeInvalid        = "invalid"
	codeRefused        = "refused"
	codeAlreadyMember  = "already-member"
	codeNotMember      = "not-member"
	codeClosed         = "closed"
)

// errNotLeader is the leader side's "I am not the leader (any more)": the
// write was not appended; the follower retries on the new leader.
var errNotLeader = errors.New("this node is not the leader")

// wireError is a handler error with its code, sent as is.
type wireError struct {
	code   string
	detail any
	err    error
}

func (e *wireError) Error() string   { return e.err.Error() }
func (e *wireError) Unwrap() error   { return e.err }
func (e *wireError) RPCCode() string { return e.code }
func (e *wireError) RPCDetail() any  { return e.detail }

var _ peernet.CodedError = (*wireError)(nil)

// conditionDetail carries a failed precondition across the wire.
type conditionDetail struct {
	Index int    `json:"index"`
	Code  string `json:"code,omitempty"`
}

// toWire gives err the code its sentinel has on the wire.
func toWire(err error) error {
	if err == nil {
		return nil
	}
	var ce *kv.ConditionError
	switch {
	case errors.As(err, &ce):
		return &wireError{codeCondition, conditionDetail{Index: ce.Index, Code: ce.Code}, err}
	case errors.Is(err, errNotLeader), errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return &wireError{codeNotLeader, nil, err}
	case errors.Is(err, ErrClosed):
		return &wireError{codeClosed, nil, err}
	case errors.Is(err, ErrOutcomeUnknown):
		return &wireError{codeOutcomeUnknown, nil, err}
	case errors.Is(err, ErrOverloaded):
		return &wireError{codeOverloaded, nil, err}
	case errors.Is(err, ErrNoLeader):
		return &wireError{codeNoLeader, nil, err}
	case errors.Is(err, kv.ErrInvalid), errors.Is(err, ErrCommand):
		return &wireError{codeInvalid, nil, err}
	case errors.Is(err, ErrRefused):
		return &wireError{codeRefused, nil, err}
	case errors.Is(err, ErrAlreadyMember):
		return &wireError{codeAlreadyMember, nil, err}
	case errors.Is(err, ErrNotMember):
		return &wireError{codeNotMember, nil, err}
	}
	return err
}

// fromWire turns the answer of a remote handler back into the error with
// the sentinel its code names; other errors are returned as they are.
func fromWire(err error) error {
	var re *peernet.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case codeCondition:
		var d conditionDetail
		if json.Unmarshal(re.Detail, &d) != nil {
			return fmt.Errorf("%w: undecodable precondition failure: %s", ErrCommand, re.Message)
		}
		return &kv.ConditionError{Index: d.Index, Code: d.Code}
	case codeNotLeader:
		return fmt.Errorf("%w: %s", errNotLeader, re.Message)
	case codeClosed:
		return fmt.Errorf("%w: %w: the leader is shutting down: %s", ErrNoLeader, errNotLeader, re.Message)
	case codeNoLeader:
		return fmt.Errorf("%w: %s", ErrNoLeader, re.Message)
	case codeOutcomeUnknown:
		return fmt.Errorf("%w: %s", ErrOutcomeUnknown, re.Message)
	case codeOverloaded:
		return fmt.Errorf("%w: %s", ErrOverloaded, re.Message)
	case codeInvalid:
		return fmt.Errorf("%w: %s", kv.ErrInvalid, re.Message)
	case codeRefused:
		return fmt.Errorf("%w: %s", ErrRefused, re.Message)
	case codeAlreadyMember:
		return fmt.Errorf("%w: %s", ErrAlreadyMember, re.Message)
	case codeNotMember:
		return fmt.Errorf("%w: %s", ErrNotMember, re.Message)
	}
	return err
}

// call asks the node at addr, with the answer's error mapped back.
func (n *Node) call(ctx context.Context, addr, method string, req, resp any) (peernet.Peer, error) {
	if n.cfg.RPC == nil {
		return peernet.Peer{}, fmt.Errorf("%w: this node has no inter-node RPC", ErrNoLeader)
	}
	p, err := n.cfg.RPC.Call(ctx, addr, method, req, resp)
	return p, fromWire(err)
}

// handle registers h for method; its errors go out with their codes.
func (n *Node) handle(method string, h peernet.Handler) {
	n.cfg.RPC.Handle(method, func(ctx context.Context, from peernet.Peer, req json.RawMessage) (any, error) {
		resp, err := h(ctx, from, req)
		return resp, toWire(err)
	})
}

func (n *Node) registerRPC() {
	if n.cfg.RPC == nil {
		return
	}
	n.handle(methodApply, n.serveApply)
	n.handle(methodReadIndex, n.serveReadIndex)
	n.handle(methodInfo, n.serveInfo)
	n.handle(methodStatus, n.serveStatus)
	n.handle(methodJoin, n.serveJoin)
	n.handle(methodAdd, n.serveAdd)
	n.handle(methodRemove, n.serveRemove)
}

// decode unmarshals an RPC request body.
func decode(req json.RawMessage, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return fmt.Errorf("%w: malformed request: %w", kv.ErrInvalid, err)
	}
	return nil
}
