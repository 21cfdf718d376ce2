package peernet_test

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/peernet"
)

type acceptResult struct {
	conn net.Conn
	err  error
}

// Accept hands raft only proven raft connections, and never an error for a
// bad one; after Close it returns net.ErrClosed.
func TestAcceptOnlyProven(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	b := c.node(t, "n2", "127.0.0.12")
	wrongKey := c.node(t, "n3", "127.0.0.13", withRootKey(randomKey(t)))
	sl := b.net.StreamLayer("kms-2.example:7374")
	if got := sl.Addr().String(); got != "kms-2.example:7374" {
		t.Errorf("Addr() = %s, want the advertised address", got)
	}
	results := make(chan acceptResult, 16)
	go func() {
		for {
			conn, err := sl.Accept()
			results <- acceptResult{conn, err}
			if err != nil {
				return
			}
		}
	}()

	// Junk of every kind.
	junk, err := net.Dial("tcp", b.addr())
	if err != nil {
		t.Fatal(err)
	}
	junk.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	junk.Close()
	pair := c.ca.tlsPair(t, "127.0.0.11")
	for _, protos := range [][]string{{"h2"}, nil, {peernet.ProtoRPC}} {
		conn, err := tls.Dial("tcp", b.addr(), &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, NextProtos: protos})
		if err == nil {
			conn.Write([]byte("garbage that is no frame"))
			conn.Close()
		}
	}
	if err := dialRaft(t, wrongKey, b); err == nil {
		t.Fatal("a node with another root key opened a raft stream")
	}
	// Then a real peer.
	conn, err := a.net.StreamLayer(a.addr()).Dial(raftAddr(b), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("x"))

	r := <-results
	if r.err != nil {
		t.Fatalf("Accept returned %v", r.err)
	}
	buf := make([]byte, 1)
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.conn.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("the accepted connection is not a's: %q, %v", buf, err)
	}
	if s := b.net.Stats(); s.RaftConns != 1 {
		t.Errorf("Stats().RaftConns = %d, want 1", s.RaftConns)
	}

	sl.Close()
	r = <-results
	if !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close returned %v, %v; want net.ErrClosed", r.conn, r.err)
	}
	waitFor(t, 10*time.Second, "the stream layer to close its connections", func() bool { return b.net.Stats().RaftConns == 0 })
}

// Connections that never say a word hold one handshake slot each, a bounded
// number of them per remote host: a real peer's dial goes through at once.
func TestJunkFloodDoesNotBlockPeers(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	b := c.node(t, "n2", "127.0.0.12", withConfig(func(cfg *peernet.Config) {
		cfg.HandshakeTimeout = time.Minute // junk is not timed out during the test
		cfg.MaxHandshakes = 16
	}))
	b.net.Handle("echo", echo)

	const flood = 200
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.99")}}
	for range flood {
		conn, err := d.Dial("tcp", b.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	// 4 (a quarter of 16) hold slots; the rest are closed at once.
	waitFor(t, 10*time.Second, "the flood to be dropped", func() bool { return b.net.Stats().HandshakesDropped == flood-4 })

	start := time.Now()
	if err := callEcho(t, a, b); err != nil {
		t.Fatal(err)
	}
	if err := dialRaft(t, a, b); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the peer's dials took %v", took)
	}
}
