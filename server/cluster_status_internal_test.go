package server

// Internal tests of the cluster status: the routes run through the real
// router against a fake health source and a fake cluster, which a running
// single node cannot be made to be.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/tlsmgr"
)

// fakeHealth is a healthSource that answers fixed facts and findings, or
// err.
type fakeHealth struct {
	mu  sync.Mutex
	in  health.Input
	res health.Result
	err error
}

func (f *fakeHealth) Health(ctx context.Context) (health.Input, health.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in, f.res, f.err
}

func (f *fakeHealth) set(res health.Result, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res, f.err = res, err
}

// fakeAsk is an askNode that answers a fixed TLS status per node id, or
// the error of that id.
type fakeAsk struct {
	status map[string]api.TLSStatus
	errs   map[string]error
}

func (f *fakeAsk) Ask(ctx context.Context, id, method string, req, resp any) error {
	if method != methodTLSStatus {
		return fmt.Errorf("unexpected method %s", method)
	}
	if err := f.errs[id]; err != nil {
		return err
	}
	st, ok := f.status[id]
	if !ok {
		return fmt.Errorf("ask %s: %w: %s", method, errNotMember, id)
	}
	*resp.(*api.TLSStatus) = st
	return nil
}

// fakeNode is the nodeInfo of node n1.
type fakeNode struct{}

func (fakeNode) ID() string                      { return "n1" }
func (fakeNode) IsLeader() bool                  { return true }
func (fakeNode) Role() string                    { return "leader" }
func (fakeNode) LeaderID() string                { return "n1" }
func (fakeNode) Started() time.Time              { return time.Time{} }
func (fakeNode) ClusterID() string               { return "c-test" }
func (fakeNode) Ready(ctx context.Context) error { return nil }

// fakeCerts is a certManager of fixed status.
type fakeCerts struct{ status tlsmgr.Status }

func (f fakeCerts) Status() tlsmgr.Status                          { return f.status }
func (f fakeCerts) Reload(ctx context.Context) tlsmgr.ReloadResult { return tlsmgr.ReloadResult{} }

// MustStatusServer serves the real router, configured by configure, with a
// cluster admin identity, as MustClusterServer does.
func MustStatusServer(tb testing.TB, configure func(h *handler)) *clusterTestServer {
	tb.Helper()
	key, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatal(err)
	}
	registry, metrics, err := newRegistry()
	if err != nil {
		tb.Fatal(err)
	}
	h := &handler{
		// A cluster admin is known without reading the state, and only
		// cluster admins are authenticated here: no state is needed.
		svc:      kms.New(nil, nil, kms.Options{Admins: []kms.Identity{kms.Identity(key.Identity())}}),
		log:      slog.New(slog.DiscardHandler),
		metrics:  metrics,
		registry: registry,
		timeout:  10 * time.Second,
	}
	configure(h)
	srv := httptest.NewUnstartedServer(h.routes())
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cert, err := key.Certificate()
	if err != nil {
		tb.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}
		tb.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	return &clusterTestServer{url: srv.URL, admin: client(cert), anon: client(), key: key, pool: pool}
}

var (
	statusNow  = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	expiryN2   = time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	expiryN3   = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	expiryFar  = time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	statusMsgs = map[string]string{
		"n2":  "Certificate of node n2 expires in 40h",
		"n3":  "Certificate of node n3 expires in 64h",
		"cr":  "Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire",
		"unr": "Node n3 is unreachable: connection refused",
	}
)

// statusFixture is a three-node cluster seen from n1: n2's and n3's
// certificates expire soon, n3 cannot be probed, and n4 is a non-voter
// that has not reported yet.
func statusFixture() (health.Input, health.Result) {
	report := func(id string, notAfter ...time.Time) health.NodeReport {
		r := health.NodeReport{NodeID: id, APIAddr: id + ".example:7373", PeerAddr: id + ".example:7374", Version: "v0.8.0", Time: statusNow.Add(-1500 * time.Millisecond)}
		for _, t := range notAfter {
			r.Pairs = append(r.Pairs, health.CertReport{EffectiveNotAfter: t, NotAfter: t.Add(time.Hour)})
		}
		return r
	}
	in := health.Input{
		Now: statusNow, Self: "n1", Leader: "n1",
		Members: []health.Member{
			{ID: "n2", PeerAddr: "n2.example:7374", Voter: true},
			{ID: "n1", PeerAddr: "n1.example:7374", Voter: true},
			{ID: "n3", PeerAddr: "n3.example:7374", Voter: true},
			{ID: "n4", PeerAddr: "n4.example:7374", Voter: false},
		},
		Reports: map[string]health.NodeReport{
			"n1": report("n1", expiryFar, expiryN2.Add(48*time.Hour)), // the API pair expires first
			"n2": report("n2", expiryN2),
			"n3": report("n3", expiryN3),
			"n9": report("n9", expiryN2), // removed: no member, no row
		},
		Probes: []health.Probe{
			{NodeID: "n1", Role: "leader", Leader: "n1", Applied: 120, Clock: statusNow},
			{NodeID: "n2", Role: "follower", Leader: "n1", Applied: 119, LastContact: 250 * time.Millisecond, Clock: statusNow},
			{NodeID: "n3", Err: "connection refused"},
			{NodeID: "n4", Role: "follower", Leader: "n1", Applied: 90, LastContact: 2 * time.Second},
		},
	}
	res := health.Result{
		Healthy:         false,
		ConsensusAtRisk: expiryN3,
		Findings: []health.Finding{
			{Kind: health.ConsensusAtRisk, Severity: health.Critical, Nodes: []string{"n2", "n3"}, At: expiryN3, Message: statusMsgs["cr"]},
			{Kind: health.CertExpiresSoon, Severity: health.Warning, Nodes: []string{"n2"}, At: expiryN2, Message: statusMsgs["n2"]},
			{Kind: health.CertExpiresSoon, Severity: health.Warning, Nodes: []string{"n3"}, At: expiryN3, Message: statusMsgs["n3"]},
			{Kind: health.Unreachable, Severity: health.Warning, Nodes: []string{"n3"}, Message: statusMsgs["unr"]},
		},
	}
	return in, res
}

func TestClusterStatusRoute(t *testing.T) {
	in, res := statusFixture()
	src := &fakeHealth{in: in, res: res}
	s := MustStatusServer(t, func(h *handler) { h.health = src })

	t.Run("Status", func(t *testing.T) {
		a := s.MustDo(t, s.admin, http.MethodGet, "/v1/cluster/status", "")
		if a.status != http.StatusOK {
			t.Fatalf("GET /v1/cluster/status = %d %s", a.status, a.body)
		}
		var got api.ClusterStatus
		dec := json.NewDecoder(strings.NewReader(string(a.body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		want := api.ClusterStatus{
			Node: "n1", EvaluatedAt: statusNow, Healthy: false, ConsensusAtRisk: expiryN3,
			Members: []api.ClusterStatusMember{
				{ID: "n1", PeerAddress: "n1.example:7374", APIAddress: "n1.example:7373", Voter: true, Role: "leader", Leader: true,
					Reachable: true, AppliedIndex: 120, CertNotAfter: expiryN2.Add(48 * time.Hour), Reported: true, ReportAgeSeconds: 1.5, Version: "v0.8.0"},
				{ID: "n2", PeerAddress: "n2.example:7374", APIAddress: "n2.example:7373", Voter: true, Role: "follower",
					Reachable: true, LastContactSeconds: 0.25, AppliedIndex: 119, CertNotAfter: expiryN2, Reported: true, ReportAgeSeconds: 1.5, Version: "v0.8.0"},
				{ID: "n3", PeerAddress: "n3.example:7374", APIAddress: "n3.example:7373", Voter: true, Error: "connection refused",
					CertNotAfter: expiryN3, Reported: true, ReportAgeSeconds: 1.5, Version: "v0.8.0"},
				{ID: "n4", PeerAddress: "n4.example:7374", Role: "follower", Reachable: true, LastContactSeconds: 2, AppliedIndex: 90},
			},
			Findings: []api.ClusterFinding{
				{Kind: "consensus-at-risk", Severity: "critical", Nodes: []string{"n2", "n3"}, At: expiryN3, Message: statusMsgs["cr"]},
				{Kind: "cert-expires-soon", Severity: "warning", Nodes: []string{"n2"}, At: expiryN2, Message: statusMsgs["n2"]},
				{Kind: "cert-expires-soon", Severity: "warning", Nodes: []string{"n3"}, At: expiryN3, Message: statusMsgs["n3"]},
				{Kind: "unreachable", Severity: "warning", Nodes: []string{"n3"}, Message: statusMsgs["unr"]},
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("status =\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("SDK", func(t *testing.T) {
		st, err := s.MustSDK(t).ClusterStatus(t.Context())
		if err != nil || st.Node != "n1" || len(st.Members) != 4 || len(st.Findings) != 4 {
			t.Errorf("ClusterStatus = %+v, %v", st, err)
		}
	})
	t.Run("HealthyHasEmptyFindings", func(t *testing.T) {
		src.set(health.Result{Healthy: true}, nil)
		defer src.set(res, nil)
		a := s.MustDo(t, s.admin, http.MethodGet, "/v1/cluster/status", "")
		if !strings.Contains(string(a.body), `"findings":[]`) || strings.Contains(string(a.body), "consensus_at_risk") {
			t.Errorf("healthy status = %s, want findings [] and no consensus_at_risk", a.body)
		}
	})
	t.Run("NoCertificate", func(t *testing.T) {
		if a := s.MustDo(t, s.anon, http.MethodGet, "/v1/cluster/status", ""); a.status != http.StatusUnauthorized {
			t.Errorf("anonymous = %d %s, want 401", a.status, a.body)
		}
	})
	t.Run("EvaluationFails", func(t *testing.T) {
		src.set(health.Result{}, errors.New("not in a cluster yet"))
		defer src.set(res, nil)
		a := s.MustDo(t, s.admin, http.MethodGet, "/v1/cluster/status", "")
		if a.status != http.StatusServiceUnavailable || a.message() != "cluster status unavailable: not in a cluster yet" {
			t.Errorf("failed evaluation = %d %q, want 503", a.status, a.message())
		}
	})
	t.Run("NoSource", func(t *testing.T) {
		s := MustStatusServer(t, func(h *handler) {})
		a := s.MustDo(t, s.admin, http.MethodGet, "/v1/cluster/status", "")
		if a.status != http.StatusServiceUnavailable || a.message() != "cluster status unavailable" {
			t.Errorf("without a source = %d %q, want 503", a.status, a.message())
		}
	})
}

func TestTLSStatusOfNode(t *testing.T) {
	local := tlsmgr.Status{Pairs: []tlsmgr.PairStatus{{Cert: "/n1.crt", Key: "/n1.key"}}}
	ask := &fakeAsk{
		status: map[string]api.TLSStatus{"n2": {Pairs: []api.TLSPairStatus{{Cert: "/n2.crt", Key: "/n2.key"}}}},
		errs:   map[string]error{"n3": errors.New("ask node n3: dial tcp: connection refused")},
	}
	s := MustStatusServer(t, func(h *handler) {
		h.node, h.certs, h.peers = fakeNode{}, fakeCerts{local}, ask
	})
	tests := []struct {
		name   string
		path   string
		status int
		cert   string // of the first pair, on success
		msg    string
	}{
		{"Local", "/v1/tls/status", 200, "/n1.crt", ""},
		{"Self", "/v1/tls/status?node=n1", 200, "/n1.crt", ""},
		{"Other", "/v1/tls/status?node=n2", 200, "/n2.crt", ""},
		{"NotMember", "/v1/tls/status?node=n9", 404, "", "not a member: n9"},
		{"Unreachable", "/v1/tls/status?node=n3", 503, "", "node n3 did not answer: ask node n3: dial tcp: connection refused"},
		{"EmptyID", "/v1/tls/status?node=", 400, "", "invalid node id"},
		{"SpaceInID", "/v1/tls/status?node=n%202", 400, "", "invalid node id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.MustDo(t, s.admin, http.MethodGet, tt.path, "")
			if a.status != tt.status {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, a.status, a.body, tt.status)
			}
			if tt.status != 200 {
				if !strings.Contains(a.message(), tt.msg) {
					t.Errorf("GET %s: message %q, want %q", tt.path, a.message(), tt.msg)
				}
				return
			}
			var st api.TLSStatus
			if err := json.Unmarshal(a.body, &st); err != nil || len(st.Pairs) != 1 || st.Pairs[0].Cert != tt.cert {
				t.Errorf("GET %s = %s, want the pair %s", tt.path, a.body, tt.cert)
			}
		})
	}
	t.Run("NoCertificate", func(t *testing.T) {
		if a := s.MustDo(t, s.anon, http.MethodGet, "/v1/tls/status?node=n2", ""); a.status != http.StatusUnauthorized {
			t.Errorf("anonymous = %d, want 401", a.status)
		}
	})
	t.Run("SDK", func(t *testing.T) {
		st, err := s.MustSDK(t).NodeTLSStatus(t.Context(), "n2")
		if err != nil || st.Pairs[0].Cert != "/n2.crt" {
			t.Errorf("NodeTLSStatus(n2) = %+v, %v", st, err)
		}
	})
	t.Run("Handler", func(t *testing.T) {
		got, err := serveTLSStatus(fakeCerts{local})(t.Context(), "n2", json.RawMessage(`{}`))
		if err != nil || !reflect.DeepEqual(got, apiTLSStatus(local)) {
			t.Errorf("tls.status handler = %+v, %v; want the node's status in wire types", got, err)
		}
	})
}
