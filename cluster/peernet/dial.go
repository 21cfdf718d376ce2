package peernet

import (
	"context"
	"crypto/hmac"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// dial opens a proven connection to addr for proto: TCP, TLS 1.3 with the
// certificate verified for the host of addr, then the dialer's side of the
// proof. The whole of it ends by ctx's deadline and within HandshakeTimeout.
func (n *Network) dial(ctx context.Context, addr, proto string) (*peerConn, error) {
	if n.isClosed() {
		return nil, ErrClosed
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("peernet: dial %s: %w", addr, err)
	}
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	go func() { // Close aborts dials in progress too

		select {
		case <-n.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("peernet: dial %s: %w", addr, err)
	}
	raw.SetDeadline(deadline)

	cfg := n.cfg.TLS.ClientTLSConfig(host).Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.NextProtos = []string{proto}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		n.observeFailure("", addr, true, err)
		raw.Close()
		n.hsFailed.Add(1)
		n.cfg.TLS.HandshakeFailed("dial")
		err = fail(ErrCertificate, err, "peernet: TLS handshake with %s: %v", addr, err)
		n.log.Warn("Could not connect to a node: TLS handshake failed",
			slog.String("remote", addr), slog.Any("error", err))
		return nil, err
	}
	peer, err := n.dialProof(tc, addr, proto)
	if err != nil {
		n.observeFailure(provenID(peer, err), addr, true, err)
		tc.Close()
		raw.Close()
		n.refused.Add(1)
		n.log.Warn("Could not connect to a node", slog.String("remote", addr),
			slog.String("node", peer.NodeID), slog.Any("error", err))
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	n.observeProven(peer, addr)
	return n.newPeerConn(tc, raw, peer), nil
}

// dialProof is the dialer's side of the proof.
func (n *Network) dialProof(tc *tls.Conn, addr, proto string) (Peer, error) {
	cs := tc.ConnectionState()
	peer := Peer{RemoteAddr: tc.RemoteAddr(), Proto: proto}
	if cs.NegotiatedProtocol != proto {
		return peer, fail(ErrProtocol, nil, "peernet: %s did not agree on protocol %s", addr, proto)
	}
	peer.Cert = cs.PeerCertificates[0]
	ekm, err := exportEKM(cs)
	if err != nil {
		return peer, err
	}
	self := n.cfg.Self()
	mac, err := n.mac(roleDialer, ekm, self)
	if err != nil {
		return peer, err
	}
	if err := writeFrame(tc, helloFrame(self, mac)); err != nil {
		return peer, n.readFailure(addr, err)
	}
	f, err := readFrame(tc)
	if err != nil {
		return peer, n.readFailure(addr, err)
	}
	if f.Error != "" || f.MAC == nil {
		return peer, refusal(addr, f.Code, f.Error)
	}
	peer.Hello = f.hello()
	want, err := n.mac(roleAcceptor, ekm, self, peer.Hello)
	if err != nil {
		return peer, err
	}
	if !hmac.Equal(want, f.MAC) {
		err = refuse(ErrRootKey, nil, "the answering node does not hold this cluster's root key",
			"peernet: node %q at %s does not hold this cluster's root key", peer.NodeID, addr)
	} else if err = checkPeer(peer, self); err == nil && n.cfg.Admit != nil {
		if aerr := n.cfg.Admit(peer, true); aerr != nil {
			err = fail(ErrNotAdmitted, aerr, "%v", aerr)
		}
	}
	if err != nil {
		writeFrame(tc, errorFrame(err)) // tell the other side why
		return peer, err
	}
	if err := writeFrame(tc, frame{OK: true}); err != nil {
		return peer, n.readFailure(addr, err)
	}
	return peer, nil
}

// readFailure explains an I/O error during the proof. In TLS 1.3 the client
// finishes its handshake before the server has checked the client's
// certificate, so a refused certificate shows here, as a TLS alert.
func (n *Network) readFailure(addr string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		n.cfg.TLS.HandshakeFailed("dial")
		return fail(ErrCertificate, err, "peernet: %s refused this node's certificate: %v", addr, err)
	}
	return fmt.Errorf("peernet: proof with %s: %w", addr, err)
}
