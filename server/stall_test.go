package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/server"
)

// A node cuts off a client that stops sending its request's body, with
// 408, once the request timeout has passed, while a log stream, which
// sets its own deadlines, outlives the read and the write timeout. The
// node's guard is advanced by hand: a tick stands for a second.
func TestNodeCutsStalledClients(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo, func(cfg *server.Config) { cfg.Limits.RequestTimeout = 12 * time.Second })
	readTicks, writeTicks := server.StallTimeouts(n.srv)
	if readTicks != 12 || writeTicks != 22 {
		t.Fatalf("reads are cut after %d s and writes after %d s, want 12 s (the request timeout) and 22 s", readTicks, writeTicks)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/v1/logs?follow=true&message=stall-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := n.admin.Do(follow)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("follow = %d", stream.StatusCode)
	}
	if in := server.StallsInFlight(n.srv); in != 1 {
		t.Fatalf("%d requests in flight, want the stream only", in)
	}

	h2 := n.admin.Transport.(*http.Transport).Clone()
	h2.ForceAttemptHTTP2 = true
	for _, c := range []struct {
		proto  string
		client *http.Client
	}{{"HTTP/1.1", n.admin}, {"HTTP/2.0", &http.Client{Transport: h2, Timeout: 10 * time.Second}}} {
		mustCutSlowBody(t, n, c.client, c.proto, readTicks)
	}

	// Far past both timeouts, the stream still delivers.
	server.SweepStalls(n.srv, 2*writeTicks)
	n.logger.Info("stall-test record")
	got := make(chan api.LogRecord, 1)
	go func() {
		var r api.LogRecord
		if json.NewDecoder(bufio.NewReader(stream.Body)).Decode(&r) == nil {
			got <- r
		}
		close(got)
	}()
	select {
	case r, ok := <-got:
		if !ok || !strings.Contains(r.Message, "stall-test record") {
			t.Fatalf("the stream ended or sent %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream delivered nothing")
	}
}

// mustCutSlowBody sends a request whose body stalls and checks that the
// node answers 408 once readTicks ticks have passed, not before.
func mustCutSlowBody(t *testing.T, n *logNode, client *http.Client, proto string, readTicks int) {
	t.Helper()
	body, feed := io.Pipe()
	defer feed.Close()
	slow, err := http.NewRequest(http.MethodPost, n.url+"/v1/key/generate/stall-test", body)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Do(slow)
		if err != nil {
			t.Errorf("%s: the slow request: %v", proto, err)
			close(answered)
			return
		}
		answered <- resp
	}()
	if _, err := feed.Write([]byte(`{"context":`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for server.StallsWatching(n.srv, "/v1/key/generate/stall-test") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the slow request did not reach the handler", proto)
		}
		time.Sleep(time.Millisecond)
	}

	server.SweepStalls(n.srv, readTicks)
	select {
	case resp := <-answered:
		t.Fatalf("%s: the slow request was answered (%v) before its read timeout", proto, resp)
	default:
	}
	server.SweepStalls(n.srv, 1)
	select {
	case resp, ok := <-answered:
		if !ok {
			t.FailNow()
		}
		defer resp.Body.Close()
		var e struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.Proto != proto || resp.StatusCode != http.StatusRequestTimeout || e.Message != "request body not received in time" {
			t.Fatalf("the slow request = %s %d %q, want %s 408", resp.Proto, resp.StatusCode, e.Message, proto)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the slow request was not cut off after its read timeout", proto)
	}
}

// A running node sweeps by itself: with a request timeout of 200 ms, a
// stalled body is answered 408 within a few ticks, on the clock.
func TestNodeSweepsOnItsOwn(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo, func(cfg *server.Config) { cfg.Limits.RequestTimeout = 200 * time.Millisecond })
	body, feed := io.Pipe()
	defer feed.Close()
	slow, err := http.NewRequest(http.MethodPost, n.url+"/v1/key/generate/stall-test", body)
	if err != nil {
		t.Fatal(err)
	}
	go feed.Write([]byte(`{"context":`))
	start := time.Now()
	resp, err := n.admin.Do(slow) // the client gives up after 10 s
	if err != nil {
		t.Fatalf("the slow request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("the slow request = %d after %v, want 408", resp.StatusCode, time.Since(start))
	}
}
