package peernet

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// StreamLayer returns the raft stream layer of this network, for
// raft.NewNetworkTransportWithConfig. Its Addr is advertise, the address the
// other nodes dial (raft stores it as this node's address); Dial opens proven
// ProtoRaft connections; Accept returns only connections that passed every
// check, and an error only once the layer or the network is closed. Closing
// the layer (raft's transport does on shutdown) closes the raft connections
// but leaves the network running; a new layer may be made later.
func (n *Network) StreamLayer(advertise string) raft.StreamLayer {
	return &streamLayer{n: n, addr: advertiseAddr(advertise), closed: make(chan struct{})}
}

type streamLayer struct {
	n         *Network
	addr      advertiseAddr
	closed    chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Accept waits for the next proven raft connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case <-s.closed:
		return nil, fmt.Errorf("peernet: raft stream layer: %w", ErrClosed)
	case <-s.n.closed:
		return nil, fmt.Errorf("peernet: raft stream layer: %w", ErrClosed)
	case c := <-s.n.raftQueue:
		return c, nil
	}
}

// Dial opens a proven raft connection to address within timeout.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	select {
	case <-s.closed:
		return nil, fmt.Errorf("peernet: raft stream layer: %w", ErrClosed)
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.n.dial(ctx, string(address), ProtoRaft)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops Accept and closes the raft connections.
func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.n.closeRaftConns(func(*peerConn) bool { return true })
	})
	return nil
}

// Addr returns the advertised address.
func (s *streamLayer) Addr() net.Addr { return s.addr }

// advertiseAddr is the address this node is dialed at.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
