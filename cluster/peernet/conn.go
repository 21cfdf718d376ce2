package peernet

import (
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// peerConn is a proven connection. It remembers the peer and the rotation
// generation it was made in, and leaves the Network's books when closed.
type peerConn struct {
	*tls.Conn
	raw       net.Conn
	peer      Peer
	gen       uint64
	n         *Network
	closeOnce sync.Once
}

func (n *Network) newPeerConn(tc *tls.Conn, raw net.Conn, peer Peer) *peerConn {
	pc := &peerConn{Conn: tc, raw: raw, peer: peer, gen: n.gen.Load(), n: n}
	if peer.Proto == ProtoRaft {
		n.connMu.Lock()
		set := n.raft[peer.NodeID]
		if set == nil {
			set = make(map[*peerConn]struct{})
			n.raft[peer.NodeID] = set
		}
		set[pc] = struct{}{}
		n.connMu.Unlock()
	}
	return pc
}

// Close closes the connection. It never blocks on a peer that does not read.
func (c *peerConn) Close() error {
	c.closeOnce.Do(func() {
		if c.peer.Proto != ProtoRaft {
			return
		}
		c.n.connMu.Lock()
		if set := c.n.raft[c.peer.NodeID]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(c.n.raft, c.peer.NodeID)
			}
		}
		c.n.connMu.Unlock()
	})
	// Close the TCP connection too: tls.Conn.Close may wait to send its
	// close_notify while another goroutine writes.
	err := c.Conn.Close()
	c.raw.Close()
	return err
}

func (c *peerConn) stale() bool { return c.gen < c.n.gen.Load() }

// closeRaftConns closes the raft connections that match and returns how
// many it closed.
func (n *Network) closeRaftConns(match func(*peerConn) bool) int {
	n.connMu.Lock()
	var victims []*peerConn
	for _, set := range n.raft {
		for c := range set {
			if match(c) {
				victims = append(victims, c)
			}
		}
	}
	n.connMu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	return len(victims)
}

// watchRotations recycles every connection after a certificate rotation, so
// that both ends use the new certificate from then on.
func (n *Network) watchRotations(rotations <-chan struct{}) {
	defer n.wg.Done()
	for {
		select {
		case <-n.closed:
			return
		case <-rotations:
		}
		gen := n.gen.Add(1)
		n.log.Info("Certificate rotated; recycling inter-node connections")
		n.retireTransport()
		n.recycleRaft(gen)
	}
}

// recycleRaft closes the raft connections made before rotation gen, one peer
// at a time with a pause between peers. Raft redials at once, on the next
// heartbeat; closing them all at once could starve the leader of its
// followers long enough for an election.
func (n *Network) recycleRaft(gen uint64) {
	n.connMu.Lock()
	ids := make([]string, 0, len(n.raft))
	for id := range n.raft {
		ids = append(ids, id)
	}
	n.connMu.Unlock()
	slices.Sort(ids)
	for i, id := range ids {
		if i > 0 {
			t := time.NewTimer(n.cfg.RecyclePause)
			select {
			case <-t.C:
			case <-n.closed:
				t.Stop()
				return
			}
		}
		closed := n.closeRaftConns(func(c *peerConn) bool { return c.peer.NodeID == id && c.gen < gen })
		n.recycled.Add(uint64(closed))
		if closed > 0 {
			n.log.Debug("Recycled raft connections after a certificate rotation",
				slog.String("node", id), slog.Int("connections", closed))
		}
	}
}
