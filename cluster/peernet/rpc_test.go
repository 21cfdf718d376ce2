package peernet_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/peernet"
)

type echoReq struct{ Msg string }
type echoResp struct{ Msg, From, FromCluster string }

func echo(ctx context.Context, from peernet.Peer, req json.RawMessage) (any, error) {
	var r echoReq
	if err := json.Unmarshal(req, &r); err != nil {
		return nil, err
	}
	return echoResp{Msg: r.Msg, From: from.NodeID, FromCluster: from.ClusterID}, nil
}

func TestCallRoundTrip(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11", withClusterID("c1"))
	b := c.node(t, "n2", "127.0.0.12", withClusterID("c1"))
	b.net.Handle("echo", echo)

	var resp echoResp
	peer, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), "echo", echoReq{Msg: "hello"}, &resp)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg != "hello" || resp.From != "n1" || resp.FromCluster != "c1" {
		t.Errorf("handler saw %+v, want the message from n1 of c1", resp)
	}
	if peer.NodeID != "n2" || peer.PeerAddr != b.addr() || peer.Proto != peernet.ProtoRPC {
		t.Errorf("Call returned peer %+v, want n2 at %s over RPC", peer.Hello, b.addr())
	}
	if peer.Cert == nil || !peer.Cert.Equal(b.cert) {
		t.Errorf("Call returned another certificate than n2's")
	}
	if !c.admits.any(func(x admission) bool { return x.at == "n2" && !x.dialed && x.peer.NodeID == "n1" }) ||
		!c.admits.any(func(x admission) bool { return x.at == "n1" && x.dialed && x.peer.NodeID == "n2" }) {
		t.Errorf("Admit was not called on both sides: %+v", c.admits.list)
	}

	// The connection is kept alive: a second call needs no new proof.
	before := len(c.admits.list)
	if _, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), "echo", echoReq{Msg: "again"}, &resp); err != nil {
		t.Fatal(err)
	}
	if after := len(c.admits.list); after != before {
		t.Errorf("a second call made %d new connections, want 0", (after-before)/2)
	}
}

type codedErr struct{ index int }

func (e codedErr) Error() string   { return "precondition 1 failed (key-exists)" }
func (e codedErr) RPCCode() string { return "key-exists" }
func (e codedErr) RPCDetail() any  { return map[string]int{"index": e.index} }

func TestCallErrors(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	b := c.node(t, "n2", "127.0.0.12")
	b.net.Handle("coded", func(context.Context, peernet.Peer, json.RawMessage) (any, error) {
		return nil, codedErr{index: 3}
	})
	b.net.Handle("plain", func(context.Context, peernet.Peer, json.RawMessage) (any, error) {
		return nil, errors.New("disk on fire")
	})
	b.net.Handle("panics", func(context.Context, peernet.Peer, json.RawMessage) (any, error) {
		panic("oops")
	})

	t.Run("CodedError", func(t *testing.T) {
		_, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), "coded", struct{}{}, nil)
		var re *peernet.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("error %v is no RemoteError", err)
		}
		if re.Code != "key-exists" || re.Message != "precondition 1 failed (key-exists)" || string(re.Detail) != `{"index":3}` {
			t.Errorf("got %+v (detail %s)", re, re.Detail)
		}
		if errors.Is(err, peernet.ErrUnreachable) || errors.Is(err, peernet.ErrNoAnswer) {
			t.Errorf("a handler error looks like a transport error: %v", err)
		}
	})
	for _, tc := range []struct{ method, code, message string }{
		{"plain", peernet.CodeInternal, "disk on fire"},
		{"panics", peernet.CodeInternal, "handler of panics panicked"},
		{"missing", peernet.CodeUnknownMethod, `unknown method "missing"`},
	} {
		t.Run(tc.method, func(t *testing.T) {
			_, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), tc.method, struct{}{}, nil)
			var re *peernet.RemoteError
			if !errors.As(err, &re) || re.Code != tc.code || re.Message != tc.message {
				t.Fatalf("got %v, want code %s and message %q", err, tc.code, tc.message)
			}
		})
	}
	t.Run("ErrUnreachable", func(t *testing.T) {
		d := c.node(t, "n4", "127.0.0.14")
		d.net.Close()
		_, err := a.net.Call(ctxTimeout(t, 10*time.Second), d.addr(), "coded", struct{}{}, nil)
		mustFail(t, err, "refused", peernet.ErrUnreachable)
	})
}

func TestCallAll(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	b := c.node(t, "n2", "127.0.0.12")
	d := c.node(t, "n3", "127.0.0.13")
	b.net.Handle("echo", echo)
	block := make(chan struct{})
	defer close(block)
	d.net.Handle("echo", func(ctx context.Context, _ peernet.Peer, _ json.RawMessage) (any, error) {
		select { // a node that does not answer in time
		case <-block:
		case <-ctx.Done():
		}
		return nil, ctx.Err()
	})
	gone := c.node(t, "n4", "127.0.0.14")
	gone.net.Close()

	addrs := []string{b.addr(), d.addr(), gone.addr()}
	start := time.Now()
	replies := a.net.CallAll(context.Background(), addrs, "echo", echoReq{Msg: "all"}, 500*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("CallAll took %v, want about the per-node timeout", took)
	}
	if len(replies) != 3 {
		t.Fatalf("got %d replies", len(replies))
	}
	var got echoResp
	if r := replies[0]; r.Err != nil || r.Peer.NodeID != "n2" || json.Unmarshal(r.Result, &got) != nil || got.Msg != "all" {
		t.Errorf("reply of n2: %+v", r)
	}
	if r := replies[1]; !errors.Is(r.Err, peernet.ErrNoAnswer) || r.Addr != d.addr() {
		t.Errorf("reply of the slow node: %+v, want ErrNoAnswer", r)
	}
	if r := replies[2]; !errors.Is(r.Err, peernet.ErrUnreachable) || r.Addr != gone.addr() {
		t.Errorf("reply of the stopped node: %+v, want ErrUnreachable", r)
	}
}

// After a certificate rotation on either side, RPC connections are made
// anew, with the new certificate, and no call fails.
func TestCallAfterRotation(t *testing.T) {
	c := newCluster(t)
	a := c.node(t, "n1", "127.0.0.11")
	b := c.node(t, "n2", "127.0.0.12")
	b.net.Handle("echo", echo)
	mustCall := func() peernet.Peer {
		t.Helper()
		peer, err := a.net.Call(ctxTimeout(t, 10*time.Second), b.addr(), "echo", echoReq{Msg: "x"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return peer
	}
	mustCall()

	t.Run("server", func(t *testing.T) {
		fresh := c.ca.issue(t, b.ip, b.certFile, b.keyFile)
		if !b.mgr.Reload(ctxTimeout(t, 10*time.Second)).Rotated {
			t.Fatal("no rotation")
		}
		// b answers on the old connection, asking a to close it; the next
		// call proves itself again and sees the new certificate.
		waitFor(t, 10*time.Second, "a connection with b's new certificate", func() bool {
			return mustCall().Cert.Equal(fresh)
		})
	})
	t.Run("client", func(t *testing.T) {
		fresh := c.ca.issue(t, a.ip, a.certFile, a.keyFile)
		if !a.mgr.Reload(ctxTimeout(t, 10*time.Second)).Rotated {
			t.Fatal("no rotation")
		}
		waitFor(t, 10*time.Second, "b to see a's new certificate", func() bool {
			mustCall()
			return c.admits.any(func(x admission) bool { return x.at == "n2" && x.peer.Cert.Equal(fresh) })
		})
	})
}
