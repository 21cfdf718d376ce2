package peernet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBody bounds the JSON body of an RPC request and of its answer.
const MaxBody = 4 << 20

// Codes of the RemoteErrors that the RPC service itself returns.
const (
	CodeInternal      = "internal"       // a handler failed with an error that is no CodedError
	CodeUnknownMethod = "unknown-method" // no handler for the method on that node
	CodeBadRequest    = "bad-request"    // the request body is no JSON
	CodeTooLarge      = "too-large"      // a body exceeds MaxBody
)

// Handler serves one RPC method. from is the proven caller; req is the
// request's JSON body. The result is encoded as JSON. A CodedError keeps its
// code and detail across the wire; any other error arrives as a RemoteError
// with code CodeInternal and the error's text.
type Handler func(ctx context.Context, from Peer, req json.RawMessage) (any, error)

// CodedError is a handler error that keeps its type across the wire: the
// caller's RemoteError has its code and its detail (encoded as JSON).
type CodedError interface {
	error
	RPCCode() string
	RPCDetail() any
}

// RemoteError is what Call returns (wrapped) when the remote handler failed.
// It is itself a CodedError, so a handler that passes on a RemoteError
// passes on its code and detail.
type RemoteError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

func (e *RemoteError) Error() string   { return e.Message }
func (e *RemoteError) RPCCode() string { return e.Code }
func (e *RemoteError) RPCDetail() any  { return e.Detail }

var _ CodedError = (*RemoteError)(nil)

type connKey struct{}

// rpcState is the RPC server (fed with proven ProtoRPC connections) and the
// client transport.
type rpcState struct {
	srv *http.Server
	ln  *chanListener

	mu       sync.RWMutex
	handlers map[string]Handler

	tmu       sync.Mutex
	transport *transportRef
}

// transportRef is one generation of the client's connection pool. A
// rotation retires it: new calls get a new one, and the old one's idle
// connections are closed once its last call has ended.
type transportRef struct {
	t       *http.Transport
	users   int
	retired bool
}

func (n *Network) startRPC() {
	n.rpc.handlers = make(map[string]Handler)
	n.rpc.ln = newChanListener(n.ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rpc/{method}", n.serveRPC)
	n.rpc.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Longer than the client's IdleConnTimeout, so the client side
		// closes an idle connection first and never sends a request on
		// one the server is closing.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	n.rpc.transport = n.newTransport()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.rpc.srv.Serve(n.rpc.ln)
	}()
}

func (n *Network) stopRPC() {
	n.rpc.srv.Close() // closes the channel listener and every connection
	n.rpc.tmu.Lock()
	n.rpc.transport.retired = true
	n.rpc.transport.t.CloseIdleConnections()
	n.rpc.tmu.Unlock()
}

func (n *Network) handToRPC(pc *peerConn) {
	if !n.rpc.ln.deliver(pc) {
		pc.Close()
	}
}

// Handle registers h for method, replacing any earlier handler.
func (n *Network) Handle(method string, h Handler) {
	n.rpc.mu.Lock()
	n.rpc.handlers[method] = h
	n.rpc.mu.Unlock()
}

func (n *Network) serveRPC(w http.ResponseWriter, r *http.Request) {
	pc, _ := r.Context().Value(connKey{}).(*peerConn)
	if pc == nil {
		writeRemoteError(w, http.StatusInternalServerError, &RemoteError{Code: CodeInternal, Message: "connection not proven"})
		return
	}
	if pc.stale() {
		// Made before a certificate rotation: answer, then close, so the
		// caller reconnects with the new certificate. Closing an idle
		// connection instead would race with a request on its way.
		w.Header().Set("Connection", "close")
	}
	method := r.PathValue("method")
	n.rpc.mu.RLock()
	h := n.rpc.handlers[method]
	n.rpc.mu.RUnlock()
	if h == nil {
		writeRemoteError(w, http.StatusNotFound, &RemoteError{Code: CodeUnknownMethod, Message: fmt.Sprintf("unknown method %q", method)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeRemoteError(w, http.StatusRequestEntityTooLarge, &RemoteError{Code: CodeTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", MaxBody)})
		}
		return
	}
	if !json.Valid(body) {
		writeRemoteError(w, http.StatusBadRequest, &RemoteError{Code: CodeBadRequest, Message: "request body is no JSON"})
		return
	}
	result, err := n.runHandler(r.Context(), h, pc.peer, method, body)
	if err != nil {
		writeRemoteError(w, http.StatusInternalServerError, toRemoteError(err))
		return
	}
	data, err := json.Marshal(result)
	if err == nil && len(data) > MaxBody {
		err = &RemoteError{Code: CodeTooLarge, Message: fmt.Sprintf("answer of %d bytes exceeds %d", len(data), MaxBody)}
	}
	if err != nil {
		writeRemoteError(w, http.StatusInternalServerError, toRemoteError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// runHandler runs h and turns a panic into an internal error, so one bad
// request does not cost the caller its connection and its answer.
func (n *Network) runHandler(ctx context.Context, h Handler, from Peer, method string, req json.RawMessage) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("Internal RPC handler panicked", slog.String("method", method),
				slog.String("node", from.NodeID), slog.Any("panic", p))
			result, err = nil, fmt.Errorf("handler of %s panicked", method)
		}
	}()
	return h(ctx, from, req)
}

func toRemoteError(err error) *RemoteError {
	var coded CodedError
	if !errors.As(err, &coded) {
		return &RemoteError{Code: CodeInternal, Message: err.Error()}
	}
	re := &RemoteError{Code: coded.RPCCode(), Message: err.Error()}
	if d := coded.RPCDetail(); d != nil {
		data, merr := json.Marshal(d)
		if merr != nil {
			return &RemoteError{Code: CodeInternal, Message: fmt.Sprintf("%v (detail not encodable: %v)", err, merr)}
		}
		re.Detail = data
	}
	if re.Code == "" {
		re.Code = CodeInternal
	}
	return re
}

func writeRemoteError(w http.ResponseWriter, status int, re *RemoteError) {
	data, _ := json.Marshal(re)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

func (n *Network) newTransport() *transportRef {
	return &transportRef{t: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return n.dial(ctx, addr, ProtoRPC)
		},
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    64, // a busy follower forwards many writes at once: keep their connections
		IdleConnTimeout:        time.Minute,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}}
}

func (n *Network) acquireTransport() *transportRef {
	n.rpc.tmu.Lock()
	defer n.rpc.tmu.Unlock()
	t := n.rpc.transport
	t.users++
	return t
}

func (n *Network) releaseTransport(t *transportRef) {
	n.rpc.tmu.Lock()
	defer n.rpc.tmu.Unlock()
	if t.users--; t.users == 0 && t.retired {
		t.t.CloseIdleConnections()
	}
}

// retireTransport starts a new connection pool for calls from now on; the
// old one's idle connections close now, the busy ones when their calls end.
func (n *Network) retireTransport() {
	n.rpc.tmu.Lock()
	defer n.rpc.tmu.Unlock()
	if n.isClosed() {
		return
	}
	old := n.rpc.transport
	old.retired = true
	old.t.CloseIdleConnections()
	n.rpc.transport = n.newTransport()
}

// Call calls method on the node at addr (its peer address) with req encoded
// as JSON, decodes the answer into resp (unless nil) and returns the proven
// Peer that answered. The errors tell three cases apart:
//   - ErrUnreachable: the request never reached the node (the dial, the TLS
//     handshake or the proof failed: then the error also wraps the reason,
//     as ErrRootKey or ErrRefused);
//   - ErrNoAnswer: the request was sent, no answer came;
//   - a wrapped *RemoteError: the handler (or the RPC service) answered
//     with an error.
func (n *Network) Call(ctx context.Context, addr, method string, req, resp any) (Peer, error) {
	var peer Peer
	body, err := json.Marshal(req)
	if err != nil {
		return peer, fmt.Errorf("peernet: %s: encoding the request: %w", method, err)
	}
	if len(body) > MaxBody {
		return peer, fmt.Errorf("peernet: %s: request of %d bytes exceeds %d", method, len(body), MaxBody)
	}
	if n.isClosed() {
		return peer, fmt.Errorf("peernet: %s on %s: %w", method, addr, ErrClosed)
	}
	var (
		used  atomic.Pointer[peerConn]
		wrote atomic.Bool
	)
	trace := &httptrace.ClientTrace{
		// Each attempt starts with GetConn: the transport retries on a
		// new connection only what it knows it has not sent.
		GetConn: func(string) { wrote.Store(false) },
		GotConn: func(info httptrace.GotConnInfo) {
			if pc, ok := info.Conn.(*peerConn); ok {
				used.Store(pc)
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}
	u := (&url.URL{Scheme: "https", Host: addr, Path: "/rpc/" + method}).String()
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return peer, fmt.Errorf("peernet: %s on %s: %w", method, addr, err)
	}
	hreq.Header.Set("Content-Type", "application/json")

	t := n.acquireTransport()
	defer n.releaseTransport(t)
	res, err := t.t.RoundTrip(hreq)
	if err != nil {
		if wrote.Load() {
			return peer, fmt.Errorf("peernet: %s on %s: %w: %w", method, addr, ErrNoAnswer, err)
		}
		return peer, fmt.Errorf("peernet: %s on %s: %w: %w", method, addr, ErrUnreachable, err)
	}
	defer res.Body.Close()
	if pc := used.Load(); pc != nil {
		peer = pc.peer
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxBody+1))
	if err != nil {
		return peer, fmt.Errorf("peernet: %s on %s: %w: %w", method, addr, ErrNoAnswer, err)
	}
	if len(data) > MaxBody {
		return peer, fmt.Errorf("peernet: %s on %s: answer exceeds %d bytes: %w", method, addr, MaxBody, ErrProtocol)
	}
	if res.StatusCode != http.StatusOK {
		re := new(RemoteError)
		if json.Unmarshal(data, re) != nil || re.Code == "" {
			re = &RemoteError{Code: CodeInternal, Message: res.Status}
		}
		if ctx.Err() != nil {
			// Our deadline passed as the answer came: most likely the
			// handler saw the call canceled. Say "no answer", the safe
			// reading of both.
			return peer, fmt.Errorf("peernet: %s on node %s: %w: %w (%w)", method, peer.NodeID, ErrNoAnswer, context.Cause(ctx), re)
		}
		return peer, fmt.Errorf("peernet: %s on node %s: %w", method, peer.NodeID, re)
	}
	if resp != nil {
		if err := json.Unmarshal(data, resp); err != nil {
			return peer, fmt.Errorf("peernet: %s on node %s: decoding the answer: %w", method, peer.NodeID, err)
		}
	}
	return peer, nil
}

// Reply is the answer of one node to CallAll.
type Reply struct {
	Addr   string
	Peer   Peer            // the node that answered, when one did
	Result json.RawMessage // the answer, when Err is nil
	Err    error           // as from Call
}

// CallAll calls method on every node in addrs at once and returns one Reply
// per address, in the order of addrs. Each call ends by ctx's deadline and
// after timeout (when positive), so one slow node delays nothing but its
// own reply.
func (n *Network) CallAll(ctx context.Context, addrs []string, method string, req any, timeout time.Duration) []Reply {
	replies := make([]Reply, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				cctx, cancel = context.WithTimeout(ctx, timeout)
			}
			defer cancel()
			var raw json.RawMessage
			peer, err := n.Call(cctx, addr, method, req, &raw)
			replies[i] = Reply{Addr: addr, Peer: peer, Err: err}
			if err == nil {
				replies[i].Result = raw
			}
		})
	}
	wg.Wait()
	return replies
}

// chanListener is the net.Listener of the RPC server: it returns the proven
// connections it is given.
type chanListener struct {
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
