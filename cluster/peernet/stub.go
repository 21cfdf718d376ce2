// Package peernet: TEMPORARY stub of the types the cluster core builds
// against; replaced by the real package at merge.
package peernet

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
)

type Hello struct{ NodeID, ClusterID, PeerAddr string }

type Peer struct {
	Hello
	Cert       *x509.Certificate
	RemoteAddr net.Addr
}

type Handler func(ctx context.Context, from Peer, req json.RawMessage) (any, error)

type RemoteError struct {
	Code, Message string
	Detail        json.RawMessage
}

func (e *RemoteError) Error() string { return e.Message }

type CodedError interface {
	error
	RPCCode() string
	RPCDetail() any
}

// ErrUnreachable: the request was certainly not delivered (dial, TLS or proof failed).
var ErrUnreachable = errors.New("peer unreachable")
