package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultTimeout bounds one attempt of a request when Config.Timeout is 0.
	DefaultTimeout = 30 * time.Second

	// maxResponseSize bounds the body of any answer the client reads.
	maxResponseSize = 8 << 20
	// maxErrorMessage bounds the text of a non-JSON error answer.
	maxErrorMessage = 256
	// certRenewBefore is how long before its expiry a certificate derived
	// from an API key is replaced by a fresh one.
	certRenewBefore = 24 * time.Hour
	// maxRetryAfter bounds how often one request waits for a Retry-After.
	maxRetryAfter = 3
)

// ErrResponseTooLarge is returned (wrapped) when a server answers with a
// body larger than the client reads.
var ErrResponseTooLarge = errors.New("response too large")

// Config configures a Client.
type Config struct {
	// Endpoints are the servers, as "https://host:port" ("host:port" gets
	// https://). A request tries them in order, starting at the last one
	// that answered, and moves on after a transport error (refused
	// connection, failed TLS handshake, reset, timeout before an answer) or
	// a 503 answer. A 503 with Retry-After is sent again to the same
	// endpoint after that delay. Any other answer, 4xx or 5xx, is final
	// (ErrOutcomeUnknown among them). A write (create, import, rotate,
	// delete, membership) moves on only if it certainly was not applied.
	// The package overview has the details.
	Endpoints []string

	// APIKey, if set, is the client's identity: the client presents a
	// self-signed certificate derived from it. It is ignored if TLS has
	// certificates of its own.
	APIKey *APIKey

	// TLS, if set, gives full control of TLS (client certificate, RootCAs).
	// It is cloned; RootCAs and InsecureSkipVerify below are then ignored.
	TLS *tls.Config

	// RootCAs verifies the servers' certificates when TLS is nil. If nil,
	// the system pool is used.
	RootCAs *x509.CertPool

	// InsecureSkipVerify accepts any server certificate when TLS is nil.
	// For development only.
	InsecureSkipVerify bool

	// Timeout bounds each attempt of a request against one endpoint,
	// answer included, and each wait for a Retry-After; DefaultTimeout if
	// 0. A deadline of the request's context bounds the request as a
	// whole.
	Timeout time.Duration

	// ConsistentReads makes every describe and list (of keys, enclaves,
	// identities, policies, the caller and the members) ask for a
	// consistent read: the node that answers first catches up with the
	// leader, so the answer reflects every write acknowledged before the
	// request, through any node. Without it a follower answers from its
	// replica, which may lag the leader by a heartbeat. WithConsistentReads
	// overrides it for the requests of one context.
	ConsistentReads bool
}

// Client talks to a minkms cluster. Its methods act in the caller's own
// enclave with the KES-compatible routes; Enclave returns a handle for the
// native routes of a named enclave. A Client is safe for concurrent use.
type Client struct {
	endpoints  []string
	http       *http.Client
	timeout    time.Duration
	consistent bool         // Config.ConsistentReads
	last       atomic.Int64 // index of the endpoint that answered last
}

// NewClient returns a Client for cfg. It fails if cfg names no endpoint or
// an endpoint is not an http(s) URL, or if no client certificate can be
// derived from the API key.
func NewClient(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("api: no endpoint")
	}
	endpoints := make([]string, 0, len(cfg.Endpoints))
	for _, e := range cfg.Endpoints {
		u, err := normalizeEndpoint(e)
		if err != nil {
			return nil, err
		}
		endpoints = append(endpoints, u)
	}
	tlsConfig, err := clientTLSConfig(&cfg)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		endpoints: endpoints,
		http: &http.Client{
			Transport: transport,
			// A node never redirects. Following a redirect would send the
			// body (a plaintext, key material) wherever the answer points,
			// and a write a second time: a redirect is an error answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:    timeout,
		consistent: cfg.ConsistentReads,
	}, nil
}

// Endpoints returns the client's endpoints, normalized.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// CloseIdleConnections closes the connections the client keeps open for
// reuse. The client stays usable.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

func normalizeEndpoint(e string) (string, error) {
	s := strings.TrimSpace(e)
	if s == "" {
		return "", errors.New("api: empty endpoint")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("api: endpoint %q: %w", e, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("api: endpoint %q: scheme %q is not https", e, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("api: endpoint %q: no host", e)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("api: endpoint %q: want scheme://host:port only", e)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func clientTLSConfig(cfg *Config) (*tls.Config, error) {
	var conf *tls.Config
	if cfg.TLS != nil {
		conf = cfg.TLS.Clone()
	} else {
		conf = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			RootCAs:            cfg.RootCAs,
			InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // the caller asked for it
		}
	}
	if cfg.APIKey != nil && len(conf.Certificates) == 0 && conf.GetClientCertificate == nil {
		src, err := newCertSource(cfg.APIKey)
		if err != nil {
			return nil, err
		}
		conf.GetClientCertificate = src.get
	}
	return conf, nil
}

// certSource hands out the certificate derived from an API key and derives
// a fresh one shortly before it expires, so a long-lived client keeps
// working.
type certSource struct {
	key  *APIKey
	mu   sync.Mutex
	cert *tls.Certificate
}

func newCertSource(k *APIKey) (*certSource, error) {
	cert, err := k.Certificate()
	if err != nil {
		return nil, err
	}
	return &certSource{key: k, cert: &cert}, nil
}

func (s *certSource) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Until(s.cert.Leaf.NotAfter) < certRenewBefore {
		cert, err := s.key.Certificate()
		if err != nil {
			return nil, err
		}
		s.cert = &cert
	}
	return s.cert, nil
}

// request is one API call: a method, an escaped path with query, and an
// optional JSON body that can be sent again to another endpoint.
type request struct {
	method string
	path   string
	body   []byte
	// write marks a request that changes the state. Sending it twice is
	// not the same as sending it once (a create answers "exists" the
	// second time, a rotation adds a second version), so it fails over to
	// the next endpoint only when it certainly was not applied: it never
	// reached the first endpoint, or the answer was a 503 "no leader" (the
	// server applied nothing) or a 503 with Retry-After (the server did not
	// act on it). Once it was sent and no answer came, the error wraps
	// ErrOutcomeUnknown.
	write bool
	// stateRead marks a GET that reads the replicated state (a describe
	// or a list), which a node serves consistently when asked to.
	stateRead bool
}

// getState returns the request of a describe or list at path.
func getState(path string) request {
	return request{method: http.MethodGet, path: path, stateRead: true}
}

// do sends r, failing over between endpoints, and decodes a 2xx answer
// into out (if not nil). A non-2xx answer is returned as an *Error.
// Bodies may hold secrets (plaintexts, data keys), so do zeroes both the
// request body and the raw answer once they are no longer needed.
func (c *Client) do(ctx context.Context, r request, out any) error {
	defer clear(r.body)
	if r.stateRead && c.consistentReads(ctx) {
		r.path = withConsistent(r.path)
	}
	status, body, err := c.send(ctx, r)
	defer clear(body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return decodeError(status, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("api: %s %s: decode answer: %w", r.method, routeOf(r.path), err)
	}
	return nil
}

// send tries the endpoints in turn, starting at the last good one, and
// returns the first final answer. A 503 with Retry-After is sent again to
// the same endpoint after the delay, at most maxRetryAfter times; any
// other 503 moves on to the next endpoint.
func (c *Client) send(ctx context.Context, r request) (int, []byte, error) {
	n := len(c.endpoints)
	idx := int(c.last.Load())
	var errs []error
	waits := 0
	for tried := 0; tried < n; {
		a, err := c.attempt(ctx, c.endpoints[idx], r)
		if err != nil {
			if ctx.Err() != nil {
				// The caller gave up: no other endpoint will do better.
				return 0, nil, fmt.Errorf("api: %s %s: %w", r.method, routeOf(r.path), err)
			}
			var failover *transportError
			if !errors.As(err, &failover) {
				return 0, nil, fmt.Errorf("api: %s %s: %w", r.method, routeOf(r.path), err)
			}
			if r.write && failover.sent {
				return 0, nil, fmt.Errorf("api: %s %s: %w: %w (not sent to another endpoint: it may have been applied)", r.method, routeOf(r.path), ErrOutcomeUnknown, err)
			}
			errs = append(errs, err)
			idx, tried = (idx+1)%n, tried+1
			continue
		}
		if a.status == http.StatusServiceUnavailable {
			// Retry-After says that the server did not act on the request
			// and when to ask again: also a RotateKey may be sent again.
			if a.hasRetryAfter && waits < maxRetryAfter {
				if c.wait(ctx, a.retryAfter) {
					waits++
					clear(a.body)
					continue
				}
				// No time left to wait: the answer is final.
			} else if tried < n-1 && (!r.write || notApplied(a)) {
				errs = append(errs, fmt.Errorf("%s: %w", c.endpoints[idx], decodeError(a.status, a.body)))
				clear(a.body)
				idx, tried = (idx+1)%n, tried+1
				continue
			}
		}
		c.last.Store(int64(idx))
		return a.status, a.body, nil
	}
	return 0, nil, fmt.Errorf("api: %s %s: no endpoint answered: %w", r.method, routeOf(r.path), errors.Join(errs...))
}

// notApplied reports whether a 503 answer says that the server applied
// nothing: there was no leader to apply it.
func notApplied(a answer) bool {
	var e ErrorResponse
	return json.Unmarshal(a.body, &e) == nil && (&Error{Message: e.Message}).Is(ErrNoLeader)
}

// wait sleeps for d, shortened to the client's per-attempt timeout, and
// reports whether the request may be sent again: not if its context ends
// first, or would end within the wait, as then the retry could not
// succeed.
func (c *Client) wait(ctx context.Context, d time.Duration) bool {
	d = min(d, c.timeout)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110, section 10.2.3). A date in the past is no delay.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// transportError is a failure before any answer arrived: the request may
// be tried at another endpoint.
type transportError struct {
	endpoint string
	err      error
	sent     bool // the request was written, in full or in part: the server may have acted on it
}

func (e *transportError) Error() string { return e.endpoint + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// answer is a server's answer to one attempt.
type answer struct {
	status        int
	body          []byte
	retryAfter    time.Duration
	hasRetryAfter bool // the answer had a valid Retry-After header
}

// attempt sends r to one endpoint and reads the answer, all within the
// client's per-attempt timeout.
func (c *Client) attempt(ctx context.Context, endpoint string, r request) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// Called once writing the request ended, with or without an error.
		WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
	})

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, endpoint+r.path, body)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats method and URL, which the caller adds anyway.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return answer{}, &transportError{endpoint: endpoint, err: err, sent: sent.Load()}
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		// The node went away mid-answer: like no answer at all (a read
		// moves on, a write's outcome is unknown).
		clear(data)
		return answer{}, &transportError{endpoint: endpoint, err: fmt.Errorf("read answer: %w", err), sent: true}
	}
	if len(data) > maxResponseSize {
		clear(data)
		return answer{}, fmt.Errorf("%s: %w (more than %d bytes)", endpoint, ErrResponseTooLarge, maxResponseSize)
	}
	a := answer{status: resp.StatusCode, body: data}
	a.retryAfter, a.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return a, nil
}

// decodeError turns a non-2xx answer into an *Error. The body is
// {"message": "..."}; for anything else (a proxy's page, say) a short text
// body becomes the message, and otherwise the status alone describes it.
func decodeError(status int, body []byte) error {
	var resp ErrorResponse
	if err := json.Unmarshal(body, &resp); err == nil && resp.Message != "" {
		return &Error{Status: status, Message: resp.Message}
	}
	msg := strings.TrimSpace(string(body))
	if line, _, ok := strings.Cut(msg, "\n"); ok {
		msg = line
	}
	if len(msg) > maxErrorMessage || strings.HasPrefix(msg, "<") || strings.HasPrefix(msg, "{") {
		msg = ""
	}
	return &Error{Status: status, Message: msg}
}

// routeOf returns the path of an API path with query, for error messages.
func routeOf(p string) string {
	route, _, _ := strings.Cut(p, "?")
	return route
}

// marshal encodes a request body.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("api: encode request: %w", err)
	}
	return b, nil
}

// listQuery returns the query of the list routes.
func listQuery(prefix, continueAt string, limit int) string {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if continueAt != "" {
		q.Set("continue", continueAt)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
