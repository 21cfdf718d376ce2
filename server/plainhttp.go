package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
)

// A client that speaks plain HTTP to the TLS port gets, from net/http, a
// text answer ("Client sent an HTTP request to an HTTPS server."), and only
// for four methods. plainHTTPListener, beneath the TLS listener, answers
// every plain HTTP request in the API's error shape instead: it looks at
// the first five bytes of a connection, in the connection's own goroutine
// (the TLS handshake's first read, never in Accept), and if they start an
// HTTP request line it writes a JSON 400 and fails the handshake. A TLS
// client always starts with a handshake record (0x16), which no method
// name does.
type plainHTTPListener struct{ net.Listener }

func (l plainHTTPListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c}, nil
}

// errPlainHTTP fails the TLS handshake of a plain HTTP client, after the
// answer was written. net/http logs it as a handshake error.
var errPlainHTTP = errors.New("client sent an HTTP request to an HTTPS server")

// plainHTTPAnswer is the answer to a plain HTTP request on the TLS port.
var plainHTTPAnswer = func() []byte {
	body := `{"message":"client sent an HTTP request to an HTTPS server: use https://"}` + "\n"
	return []byte("HTTP/1.1 400 Bad Request\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Connection: close\r\n\r\n" + body)
}()

// httpMethods start a request line; the first five bytes of a plain HTTP
// request are a prefix of one of them, or start with one.
var httpMethods = []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "PATCH ", "OPTIONS ", "CONNECT ", "TRACE "}

func looksLikeHTTP(hdr []byte) bool {
	for _, m := range httpMethods {
		if bytes.HasPrefix([]byte(m), hdr) || bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

// sniffConn is a connection whose first five bytes are checked for plain
// HTTP before the TLS layer reads them.
type sniffConn struct {
	net.Conn
	once    sync.Once
	pending []byte // read while sniffing, not yet returned
	err     error  // of the sniffing read, returned after pending
}

func (c *sniffConn) Read(p []byte) (int, error) {
	c.once.Do(c.sniff)
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

func (c *sniffConn) sniff() {
	hdr := make([]byte, 5) // a TLS record header
	n, err := io.ReadFull(c.Conn, hdr)
	if n == len(hdr) && looksLikeHTTP(hdr) {
		c.Conn.Write(plainHTTPAnswer)
		c.err = errPlainHTTP
		return
	}
	c.pending = hdr[:n]
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		c.err = err
	} else if err != nil {
		c.err = io.EOF
	}
}
