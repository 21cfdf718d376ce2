package server_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange writes req on a new connection to the node (plain TCP, or
// TLS when tlsConn) and reads the answer.
func rawExchange(t *testing.T, n *node, tlsConn bool, req string) (*http.Response, string) {
	t.Helper()
	addr := strings.TrimPrefix(n.url, "https://")
	var c net.Conn
	var err error
	if tlsConn {
		c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: n.pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.20q: %v", req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestPlainHTTPOnTLSPort: a plain HTTP request on the TLS port is answered
// in the API's error shape, whatever its method.
func TestPlainHTTPOnTLSPort(t *testing.T) {
	n := MustSharedNode(t)
	for _, req := range []string{
		"GET /version HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /v1/key/create/k HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"DELETE /v1/key/delete/k HTTP/1.1\r\nHost: x\r\n\r\n",
		"PATCH /v1/key/create/k HTTP/1.0\r\n\r\n",
	} {
		resp, body := rawExchange(t, n, false, req)
		var e struct{ Message string }
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Message, "HTTP request to an HTTPS server") {
			t.Errorf("%.20q: %d %s %q, want a JSON 400 about HTTPS", req, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	// TLS still works after the sniffing.
	resp, body := rawExchange(t, n, true, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /version over TLS: %d %q", resp.StatusCode, body)
	}
}

// TestGoGeneratedErrors pins what net/http answers itself, before any
// handler runs, as docs/api.md says: not JSON.
func TestGoGeneratedErrors(t *testing.T) {
	n := MustSharedNode(t)
	t.Run("HeadersTooLarge", func(t *testing.T) {
		big := strings.Repeat("a", 80<<10)
		resp, body := rawExchange(t, n, true, "GET /version HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body != "431 Request Header Fields Too Large" {
			t.Errorf("%d %q, want Go's text 431", resp.StatusCode, body)
		}
	})
	t.Run("HTTP09", func(t *testing.T) {
		resp, body := rawExchange(t, n, true, "GET /version\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "400 Bad Request") {
			t.Errorf("%d %q, want Go's text 400", resp.StatusCode, body)
		}
	})
	t.Run("UnsupportedVersion", func(t *testing.T) {
		resp, body := rawExchange(t, n, true, "GET /version HTTP/3.0\r\nHost: x\r\n\r\n")
		if resp.StatusCode != http.StatusHTTPVersionNotSupported || !strings.Contains(body, "unsupported protocol version") {
			t.Errorf("%d %q, want Go's text 505", resp.StatusCode, body)
		}
	})
}
