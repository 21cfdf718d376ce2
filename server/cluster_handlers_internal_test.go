package server

// An internal test: the membership routes run through the real router
// against a fake cluster, which a running node cannot be made to be.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// fakeCluster is a clusterAdmin that answers from fixed members and
// records what it was asked. err, if set, is what every call returns.
type fakeCluster struct {
	mu      sync.Mutex
	members []memberInfo
	err     error
	calls   []string
}

var _ clusterAdmin = (*fakeCluster)(nil)

func (f *fakeCluster) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeCluster) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCluster) Members(ctx context.Context) ([]memberInfo, error) {
	if err := f.record("Members"); err != nil {
		return nil, err
	}
	return slices.Clone(f.members), nil
}

func (f *fakeCluster) AddNode(ctx context.Context, peerAddr string) (memberInfo, error) {
	if err := f.record("AddNode " + peerAddr); err != nil {
		return memberInfo{}, err
	}
	return memberInfo{ID: "n4", PeerAddr: peerAddr, APIAddr: "n4.example:7373", Voter: false}, nil
}

func (f *fakeCluster) RemoveNode(ctx context.Context, id string) error {
	return f.record("RemoveNode " + id)
}

// clusterTestServer is the client API of a node with a fake cluster.
type clusterTestServer struct {
	url   string
	admin *http.Client // a cluster admin
	anon  *http.Client // no client certificate
	key   *api.APIKey  // the cluster admin's
	pool  *x509.CertPool
}

// MustClusterServer serves the real router with c as the cluster (nil:
// none) and a cluster admin identity, and stops when the test ends.
func MustClusterServer(tb testing.TB, c clusterAdmin) *clusterTestServer {
	tb.Helper()
	return MustStatusServer(tb, func(h *handler) {
		if c != nil {
			h.cluster = c
		}
	})
}

// clusterAnswer is an answer of the test server.
type clusterAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a clusterAnswer) message() string {
	var e api.ErrorResponse
	json.Unmarshal(a.body, &e)
	return e.Message
}

// MustDo sends a request with body (a string sent as is) and returns the
// answer.
func (s *clusterTestServer) MustDo(tb testing.TB, client *http.Client, method, path, body string) clusterAnswer {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(tb.Context(), method, s.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return clusterAnswer{status: resp.StatusCode, header: resp.Header, body: data}
}

// MustSDK returns an SDK client of the test server as the cluster admin.
func (s *clusterTestServer) MustSDK(tb testing.TB) *api.Client {
	tb.Helper()
	c, err := api.NewClient(api.Config{Endpoints: []string{s.url}, APIKey: s.key, RootCAs: s.pool, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func TestClusterRoutes(t *testing.T) {
	fake := &fakeCluster{members: []memberInfo{
		{ID: "n2", PeerAddr: "n2.example:7374", APIAddr: "n2.example:7373", Voter: true},
		{ID: "n1", PeerAddr: "n1.example:7374", APIAddr: "n1.example:7373", Voter: true, Leader: true},
		{ID: "n3", PeerAddr: "n3.example:7374", Voter: false},
	}}
	s := MustClusterServer(t, fake)

	t.Run("Members", func(t *testing.T) {
		a := s.MustDo(t, s.admin, http.MethodGet, "/v1/cluster/members", "")
		want := `{"members":[` +
			`{"id":"n1","peer_address":"n1.example:7374","api_address":"n1.example:7373","suffrage":"voter","leader":true},` +
			`{"id":"n2","peer_address":"n2.example:7374","api_address":"n2.example:7373","suffrage":"voter","leader":false},` +
			`{"id":"n3","peer_address":"n3.example:7374","api_address":"","suffrage":"nonvoter","leader":false}]}` + "\n"
		if a.status != http.StatusOK || string(a.body) != want {
			t.Errorf("GET /v1/cluster/members = %d %s, want 200 %s", a.status, a.body, want)
		}
	})
	t.Run("AddNode", func(t *testing.T) {
		for _, method := range []string{http.MethodPost, http.MethodPut} {
			a := s.MustDo(t, s.admin, method, "/v1/cluster/members", `{"address":"n4.example:7374"}`)
			var m api.ClusterMember
			if err := json.Unmarshal(a.body, &m); a.status != http.StatusOK || err != nil {
				t.Fatalf("%s /v1/cluster/members = %d %s", method, a.status, a.body)
			}
			want := api.ClusterMember{ID: "n4", PeerAddress: "n4.example:7374", APIAddress: "n4.example:7373", Suffrage: "nonvoter"}
			if m != want {
				t.Errorf("%s /v1/cluster/members = %+v, want %+v", method, m, want)
			}
		}
	})
	t.Run("RemoveNode", func(t *testing.T) {
		a := s.MustDo(t, s.admin, http.MethodDelete, "/v1/cluster/members/n3", "")
		if a.status != http.StatusOK {
			t.Errorf("DELETE /v1/cluster/members/n3 = %d %s, want 200", a.status, a.body)
		}
	})
	want := []string{"Members", "AddNode n4.example:7374", "AddNode n4.example:7374", "RemoveNode n3"}
	if got := fake.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

// TestClusterRoutesSDK: the SDK's methods and errors against the real
// router.
func TestClusterRoutesSDK(t *testing.T) {
	fake := &fakeCluster{members: []memberInfo{{ID: "n1", PeerAddr: "n1.example:7374", Voter: true, Leader: true}}}
	s := MustClusterServer(t, fake)
	c := s.MustSDK(t)
	ctx := t.Context()

	members, err := c.ClusterMembers(ctx)
	if err != nil || len(members.Members) != 1 || members.Members[0].ID != "n1" || !members.Members[0].Leader {
		t.Fatalf("ClusterMembers = %+v, %v", members, err)
	}
	m, err := c.AddNode(ctx, "n4.example:7374")
	if err != nil || m.ID != "n4" || m.Suffrage != api.SuffrageNonvoter {
		t.Fatalf("AddNode = %+v, %v", m, err)
	}
	if err := c.RemoveNode(ctx, "n4"); err != nil {
		t.Fatalf("RemoveNode: %v", err)
	}

	for _, tt := range []struct {
		err  error
		want *api.Error
	}{
		{errNoLeader, api.ErrNoLeader},
		{errOutcomeUnknown, api.ErrOutcomeUnknown},
	} {
		fake.mu.Lock()
		fake.err = fmt.Errorf("removing n4: %w", tt.err)
		fake.mu.Unlock()
		if err := c.RemoveNode(ctx, "n4"); !errors.Is(err, tt.want) {
			t.Errorf("RemoveNode with %v = %v, want %v", tt.err, err, tt.want)
		}
	}

	// Overloaded: the SDK waits the Retry-After and asks again.
	fake.mu.Lock()
	fake.err = errOverloaded
	fake.mu.Unlock()
	go func() {
		time.Sleep(300 * time.Millisecond)
		fake.mu.Lock()
		fake.err = nil
		fake.mu.Unlock()
	}()
	start := time.Now()
	if err := c.RemoveNode(ctx, "n4"); err != nil {
		t.Errorf("RemoveNode after an overload = %v, want success after the Retry-After", err)
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("RemoveNode after an overload took %v, want the 1s of Retry-After", elapsed)
	}
}

func TestClusterRoutesRefuse(t *testing.T) {
	fake := &fakeCluster{}
	s := MustClusterServer(t, fake)
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		body   string
		status int
		msg    string // a substring of the message
	}{
		{"NoCertificate", s.anon, http.MethodGet, "/v1/cluster/members", "", 401, "no client certificate"},
		{"NoCertificateAdd", s.anon, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:7374"}`, 401, "no client certificate"},
		{"MissingBody", s.admin, http.MethodPost, "/v1/cluster/members", "", 400, "missing request body"},
		{"UnknownField", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:7374","voter":true}`, 400, "unknown field"},
		{"MalformedJSON", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":`, 400, "malformed request body"},
		{"TrailingData", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:7374"} {}`, 400, "malformed request body"},
		{"WrongType", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":7374}`, 400, "must be a string"},
		{"NoAddress", s.admin, http.MethodPost, "/v1/cluster/members", `{}`, 400, "invalid address"},
		{"NoPort", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example"}`, 400, "host:port"},
		{"PortZero", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:0"}`, 400, "port"},
		{"PortName", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:raft"}`, 400, "port"},
		{"URL", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"https://n4.example:7374"}`, 400, "scheme"},
		{"NoHost", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":":7374"}`, 400, "host:port"},
		{"Wildcard", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"0.0.0.0:7374"}`, 400, "dial"},
		{"WildcardIPv6", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"[::]:7374"}`, 400, "dial"},
		{"SpaceInHost", s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4 example:7374"}`, 400, "space"},
		{"LongID", s.admin, http.MethodDelete, "/v1/cluster/members/" + strings.Repeat("n", 129), "", 400, "node id"},
		{"SpaceInID", s.admin, http.MethodDelete, "/v1/cluster/members/n%204", "", 400, "node id"},
		{"EncodedSlashID", s.admin, http.MethodDelete, "/v1/cluster/members/n%2F4", "", 400, "slash"},
		{"NoID", s.admin, http.MethodDelete, "/v1/cluster/members/", "", 404, "not found"},
		{"Method", s.admin, http.MethodPatch, "/v1/cluster/members", "", 405, "method not allowed"},
		{"UnknownRoute", s.admin, http.MethodGet, "/v1/cluster/nothing", "", 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.MustDo(t, tt.client, tt.method, tt.path, tt.body)
			if a.status != tt.status || !strings.Contains(a.message(), tt.msg) {
				t.Errorf("%s %s = %d %q, want %d and a message containing %q", tt.method, tt.path, a.status, a.message(), tt.status, tt.msg)
			}
		})
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Errorf("refused requests reached the cluster: %q", calls)
	}
	t.Run("IPv6", func(t *testing.T) {
		if a := s.MustDo(t, s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"[fd00::4]:7374"}`); a.status != http.StatusOK {
			t.Errorf("an IPv6 peer address = %d %s, want 200", a.status, a.body)
		}
	})
}

func TestClusterUnavailable(t *testing.T) {
	s := MustClusterServer(t, nil)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/cluster/members", ""},
		{http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:7374"}`},
		{http.MethodDelete, "/v1/cluster/members/n3", ""},
	} {
		a := s.MustDo(t, s.admin, r.method, r.path, r.body)
		if a.status != http.StatusServiceUnavailable || a.message() != "cluster membership unavailable" {
			t.Errorf("%s %s without a cluster = %d %q, want 503 %q", r.method, r.path, a.status, a.message(), "cluster membership unavailable")
		}
	}
}

// TestClusterErrors: the cluster failures are answered as clusterErrors
// says, through the router, also when kms wraps them.
func TestClusterErrors(t *testing.T) {
	fake := &fakeCluster{}
	s := MustClusterServer(t, fake)
	tests := []struct {
		name       string
		err        error
		status     int
		msg        string
		retryAfter string
	}{
		{"NoLeader", fmt.Errorf("adding n4: %w", errNoLeader), 503, api.ErrNoLeader.Message, ""},
		{"Overloaded", fmt.Errorf("adding n4: %w", errOverloaded), 503, api.ErrOverloaded.Message, "1"},
		{"OutcomeUnknown", fmt.Errorf("adding n4: %w", errOutcomeUnknown), 500, api.ErrOutcomeUnknown.Message, ""},
		{"OutcomeUnknownInKMS", fmt.Errorf("applying change: %w: %w", kms.ErrInternal, errOutcomeUnknown), 500, api.ErrOutcomeUnknown.Message, ""},
		{"NoLeaderInKMS", fmt.Errorf("applying change: %w: %w", kms.ErrNoLeader, errNoLeader), 503, api.ErrNoLeader.Message, ""},
		{"AlreadyMember", fmt.Errorf("%w: n4 (n4.example:7374)", errAlreadyMember), 409, "already a member: n4 (n4.example:7374)", ""},
		{"NotMember", fmt.Errorf("%w: n9", errNotMember), 404, "not a member: n9", ""},
		{"Refused", fmt.Errorf("%w: n4.example:7374 holds another root key", errRefused), 400, "node refused: n4.example:7374 holds another root key", ""},
		{"Other", errors.New("raft: disk on fire"), 500, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.mu.Lock()
			fake.err = tt.err
			fake.mu.Unlock()
			a := s.MustDo(t, s.admin, http.MethodPost, "/v1/cluster/members", `{"address":"n4.example:7374"}`)
			if a.status != tt.status || a.message() != tt.msg {
				t.Errorf("answer = %d %q, want %d %q", a.status, a.message(), tt.status, tt.msg)
			}
			if got := a.header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			// The same from the KES routes' statusOf: not native.
			if status, msg := statusOf(tt.err, false); status != tt.status || msg != tt.msg {
				t.Errorf("statusOf = %d %q, want %d %q", status, msg, tt.status, tt.msg)
			}
		})
	}
}

// TestRetryAfterOnlyForOverload: writeError sets Retry-After on an
// overload only.
func TestRetryAfterOnlyForOverload(t *testing.T) {
	for _, err := range []error{kms.ErrNoLeader, errNoLeader, errRequestTimedOut, errOutcomeUnknown, errOverloaded} {
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest(http.MethodPut, "/v1/key/create/k", nil), slog.New(slog.DiscardHandler), err)
		want := ""
		if err == errOverloaded {
			want = "1"
		}
		if got := rec.Header().Get("Retry-After"); got != want {
			t.Errorf("%v: Retry-After = %q, want %q", err, got, want)
		}
		if !bytes.Contains(rec.Body.Bytes(), []byte(`"message"`)) {
			t.Errorf("%v: body %s is no error document", err, rec.Body)
		}
	}
}
