package peernet_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/peernet"
)

// dialRaft opens a raft stream from a to b through a's stream layer.
func dialRaft(t *testing.T, a, b *node) error {
	t.Helper()
	c, err := a.net.StreamLayer(a.addr()).Dial(raftAddr(b), 10*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// callEcho calls b's echo handler from a.
func callEcho(t *testing.T, a, b *node) error {
	t.Helper()
	_, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), "echo", echoReq{Msg: "hi"}, nil)
	return err
}

// waitLog waits until n has logged text.
func waitLog(t *testing.T, n *node, text ...string) {
	t.Helper()
	waitFor(t, 10*time.Second, "a log line on "+n.id+" saying "+strings.Join(text, " … "), func() bool {
		for _, line := range strings.Split(n.logs.String(), "\n") {
			ok := true
			for _, s := range text {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return true
			}
		}
		return false
	})
}

func TestProofRefusals(t *testing.T) {
	c := newCluster(t)
	b := c.node(t, "n2", "127.0.0.12", withClusterID("prod"))
	b.net.Handle("echo", echo)

	t.Run("WrongRootKey", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11", withRootKey(randomKey(t)))
		for name, try := range map[string]func(*testing.T, *node, *node) error{"raft": dialRaft, "rpc": callEcho} {
			t.Run(name, func(t *testing.T) {
				err := try(t, a, b)
				mustFail(t, err, "the dialing node does not hold this cluster's root key", peernet.ErrRefused, peernet.ErrRootKey)
				waitLog(t, b, "Refused an inter-node connection", "127.0.0.1", "node=n1", "does not hold this cluster's root key")
			})
		}
		err := callEcho(t, a, b)
		if !errors.Is(err, peernet.ErrUnreachable) {
			t.Errorf("Call error %v is no ErrUnreachable", err)
		}
	})
	t.Run("OtherCluster", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11", withClusterID("staging"))
		for name, try := range map[string]func(*testing.T, *node, *node) error{"raft": dialRaft, "rpc": callEcho} {
			t.Run(name, func(t *testing.T) {
				err := try(t, a, b)
				mustFail(t, err, `node "n1" belongs to cluster staging, not prod`, peernet.ErrRefused, peernet.ErrOtherCluster)
				waitLog(t, b, "Refused an inter-node connection", `node \"n1\" belongs to cluster staging, not prod`)
				// And the other way round: the dialer says it too.
				err = try(t, b, a)
				mustFail(t, err, `node "n2" belongs to cluster prod, not staging`, peernet.ErrRefused, peernet.ErrOtherCluster)
			})
		}
	})
	t.Run("NoClusterYet", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11") // a node that is to join
		if err := callEcho(t, a, b); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ForeignCA", func(t *testing.T) {
		foreign := newTestCA(t, "foreign CA")
		// a trusts both CAs, so the handshake gets as far as b checking a's
		// certificate.
		a := c.node(t, "n1", "127.0.0.11", withCA(foreign, bundle(t, foreign, c.ca)))
		for name, try := range map[string]func(*testing.T, *node, *node) error{"raft": dialRaft, "rpc": callEcho} {
			t.Run(name, func(t *testing.T) {
				err := try(t, a, b)
				mustFail(t, err, "refused this node's certificate", peernet.ErrCertificate)
				waitLog(t, b, "TLS handshake failed", "certificate signed by unknown authority")
				err = try(t, b, a)
				mustFail(t, err, "certificate signed by unknown authority", peernet.ErrCertificate)
			})
		}
	})
	t.Run("AdmitRefuses", func(t *testing.T) {
		notMember := errors.New(`node "n1" is not a member of this cluster`)
		d := c.node(t, "n3", "127.0.0.13", withAdmit(func(p peernet.Peer, dialed bool) error {
			if p.NodeID == "n1" {
				return notMember
			}
			return nil
		}))
		d.net.Handle("echo", echo)
		a := c.node(t, "n1", "127.0.0.11")
		for name, try := range map[string]func(*testing.T, *node, *node) error{"raft": dialRaft, "rpc": callEcho} {
			t.Run(name, func(t *testing.T) {
				err := try(t, a, d)
				mustFail(t, err, notMember.Error(), peernet.ErrRefused, peernet.ErrNotAdmitted)
				// d dials a: d's own Admit refuses, a is told.
				err = try(t, d, a)
				mustFail(t, err, notMember.Error(), peernet.ErrNotAdmitted, notMember)
				waitLog(t, a, "Refused an inter-node connection", "node=n3", "refused the connection", "is not a member")
			})
		}
	})
}

// An API client certificate from the cluster's CA, for a node's host and
// with client authentication, opens TLS sessions but neither a raft stream
// nor an RPC: it has no root key to prove.
func TestAPIClientCertificateRefused(t *testing.T) {
	c := newCluster(t)
	b := c.node(t, "n2", "127.0.0.12")
	ran := make(chan struct{}, 1)
	b.net.Handle("echo", func(ctx context.Context, from peernet.Peer, req json.RawMessage) (any, error) {
		ran <- struct{}{}
		return nil, nil
	})
	sl := b.net.StreamLayer(b.addr())
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			conn, err := sl.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	t.Cleanup(func() { sl.Close() })
	cert := c.ca.tlsPair(t, "127.0.0.11")

	for _, proto := range []string{peernet.ProtoRaft, peernet.ProtoRPC} {
		t.Run(proto, func(t *testing.T) {
			conn, err := tls.Dial("tcp", b.addr(), &tls.Config{
				Certificates:       []tls.Certificate{cert},
				InsecureSkipVerify: true,
				NextProtos:         []string{proto},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			// Without the key, the best a client can do is to claim to be a
			// node and send the protocol right away.
			hello, _ := json.Marshal(map[string]any{"node_id": "n1", "peer_addr": "127.0.0.11:7374", "mac": make([]byte, 32)})
			conn.Write(binary.BigEndian.AppendUint32(nil, uint32(len(hello))))
			conn.Write(hello)
			conn.Write([]byte("POST /rpc/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
			answer, _ := io.ReadAll(conn)
			if !strings.Contains(string(answer), "the dialing node does not hold this cluster's root key") {
				t.Errorf("answer %q, want the refusal", answer)
			}
			if strings.Contains(string(answer), "HTTP/1.1") {
				t.Errorf("the RPC server answered: %q", answer)
			}
		})
	}
	select {
	case <-ran:
		t.Error("the handler ran")
	case conn := <-accepted:
		t.Errorf("raft accepted a connection from %v", conn.RemoteAddr())
	default:
	}
	waitLog(t, b, "Refused an inter-node connection", "node=n1", "does not hold this cluster's root key")
}

// A node that answers without the root key is found out by the dialer.
func TestAcceptorWithoutKeyDetected(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	pair := c.ca.tlsPair(t, "127.0.0.13")
	ln, err := tls.Listen("tcp", "127.0.0.13:0", &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{peernet.ProtoRaft, peernet.ProtoRPC},
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	told := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		readRawFrame(conn)
		hello, _ := json.Marshal(map[string]any{"node_id": "n3", "peer_addr": ln.Addr().String(), "mac": make([]byte, 32)})
		conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(hello))), hello...))
		told <- string(readRawFrame(conn))
	}()
	_, err = a.net.StreamLayer(a.addr()).Dial(raftAddrOf(ln.Addr().String()), 10*time.Second)
	mustFail(t, err, `node "n3" at `+ln.Addr().String()+" does not hold this cluster's root key", peernet.ErrRootKey)
	if got := <-told; !strings.Contains(got, "the answering node does not hold this cluster's root key") {
		t.Errorf("the impostor was told %q", got)
	}
}

func readRawFrame(r io.Reader) []byte {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil
	}
	body := make([]byte, binary.BigEndian.Uint32(head[:]))
	io.ReadFull(r, body)
	return body
}
