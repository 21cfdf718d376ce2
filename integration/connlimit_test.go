package integration_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnectionLimits (issue 7, finding 6): idle connections, each opened
// with one unauthenticated health request, fill limits.max_connections; a
// further connection is refused before its TLS handshake and counted; an
// authenticated client keeps its connection and is served throughout, and
// new authenticated clients are served again once the idle connections
// have timed out (limits.unauthenticated_idle_timeout).
func TestConnectionLimits(t *testing.T) {
	const maxConns = 50
	n := MustStartNode(t, NodeOptions{ExtraConfig: fmt.Sprintf("limits:\n  max_connections: %d\n  unauthenticated_idle_timeout: 3s\n", maxConns)})
	ctx := ctxT(t)
	admin := n.Client(n.AdminKey) // its connection is authenticated by its first request
	defer admin.CloseIdleConnections()
	if err := admin.CreateKey(ctx, "before-the-flood"); err != nil {
		t.Fatal(err)
	}

	// The flood: every slot but the admin's, filled at once. A slot may
	// still be held for a moment by a readiness probe's connection that
	// the client has closed, so a refused one is retried.
	idle := make([]*idleConn, maxConns-1)
	var wg sync.WaitGroup
	errs := make(chan error, len(idle))
	for i := range idle {
		wg.Go(func() {
			deadline := time.Now().Add(10 * time.Second)
			for {
				c, err := n.dialIdle()
				if err == nil {
					idle[i] = c
					return
				}
				if time.Now().After(deadline) {
					errs <- err
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("an idle connection within the cap was not served: %v", err)
	}
	defer func() {
		for _, c := range idle {
			c.conn.Close()
		}
	}()

	t.Run("OverTheCapRefused", func(t *testing.T) {
		c, err := n.dialIdle()
		if err == nil {
			c.conn.Close()
			t.Fatalf("connection %d was served; want it refused at limits.max_connections %d", maxConns+1, maxConns)
		}
		t.Logf("connection %d: %v", maxConns+1, err)
	})

	t.Run("AuthenticatedServedAtTheCap", func(t *testing.T) {
		if _, err := admin.DescribeKey(ctx, "before-the-flood"); err != nil {
			t.Fatalf("the admin's open connection is no longer served: %v", err)
		}
	})

	t.Run("IdleClosedAfterTimeout", func(t *testing.T) {
		for i, c := range idle {
			if !c.closedByServer(15 * time.Second) {
				t.Fatalf("idle unauthenticated connection %d still open 15s after its only request", i)
			}
		}
		fresh := n.Client(n.AdminKey) // a new connection
		defer fresh.CloseIdleConnections()
		if err := fresh.CreateKey(ctx, "after-the-flood"); err != nil {
			t.Fatalf("a new authenticated client is not served after the idle connections timed out: %v", err)
		}
	})

	t.Run("RefusalsInMetrics", func(t *testing.T) {
		metrics := n.metrics(t)
		m := regexp.MustCompile(`(?m)^minkms_api_connections_refused_total\{reason="max_connections"\} (\S+)$`).FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("no minkms_api_connections_refused_total{reason=\"max_connections\"} in /metrics:\n%s", metrics)
		}
		if v, _ := strconv.ParseFloat(m[1], 64); v < 1 {
			t.Errorf("minkms_api_connections_refused_total{reason=\"max_connections\"} = %s, want at least 1", m[1])
		}
		if !regexp.MustCompile(`(?m)^minkms_api_connections \d+$`).MatchString(metrics) {
			t.Errorf("no minkms_api_connections gauge in /metrics")
		}
		if !strings.Contains(n.Log.String(), "Client API connections refused: limits.max_connections reached") {
			t.Errorf("the refusal was not logged")
		}
	})
}

// idleConn is a client connection that made one request and now idles.
type idleConn struct {
	conn *tls.Conn
	r    *bufio.Reader
}

// dialIdle opens a TLS connection without a client certificate, asks
// /v1/health/live on it and leaves it open.
func (n *Node) dialIdle() (*idleConn, error) {
	cfg := n.tlsConfig(nil)
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", n.Addr, cfg)
	if err != nil {
		return nil, err
	}
	c := &idleConn{conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /v1/health/live HTTP/1.1\r\nHost: "+n.Addr+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("/v1/health/live: %s", resp.Status)
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

// closedByServer waits up to timeout for the server to close the connection.
func (c *idleConn) closedByServer(timeout time.Duration) bool {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	_, err := c.r.ReadByte()
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// metrics returns /metrics as the admin sees it.
func (n *Node) metrics(t *testing.T) string {
	t.Helper()
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig(n.AdminKey)}}
	defer httpc.CloseIdleConnections()
	resp, err := httpc.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %v", resp.Status, err)
	}
	return string(body)
}
