package cluster

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// NewNetworkTransport returns raft's network transport over stream, the
// raft side of the inter-node listener, logging through logger.
func NewNetworkTransport(stream raft.StreamLayer, logger *slog.Logger) raft.Transport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		// Timeout bounds a single RPC's I/O; installing a snapshot is
		// scaled by raft itself.
		Timeout: 10 * time.Second,
		Logger:  transportLogger(logger),
	})
}

// transportLogger is the transport's logger: raft's own, less the errors of
// reads this node's shutdown cut short.
func transportLogger(logger *slog.Logger) *hclogAdapter {
	a := newHCLogAdapter(logger)
	a.demote = demoteLocalClose
	return a
}
