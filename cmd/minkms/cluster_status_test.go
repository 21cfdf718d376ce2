package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

var (
	statusAt = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	expiryN2 = time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	expiryN3 = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
)

// statusJSON returns the answer of /v1/cluster/status with the given
// health and findings of the given severities.
func statusJSON(t *testing.T, healthy bool, severities ...string) string {
	t.Helper()
	st := api.ClusterStatus{
		Node: "n1", EvaluatedAt: statusAt, Healthy: healthy,
		Members: []api.ClusterStatusMember{
			{ID: "n1", PeerAddress: "n1.example:7374", APIAddress: "n1.example:7373", Voter: true, Role: "leader", Leader: true,
				Reachable: true, AppliedIndex: 120, CertNotAfter: expiryN3.AddDate(1, 0, 0), Reported: true, ReportAgeSeconds: 1.5},
			{ID: "n2", PeerAddress: "n2.example:7374", APIAddress: "n2.example:7373", Voter: true, Role: "follower",
				Reachable: true, LastContactSeconds: 0.25, AppliedIndex: 119, CertNotAfter: expiryN2, Reported: true, ReportAgeSeconds: 4},
			{ID: "n3", PeerAddress: "n3.example:7374", Voter: false, Error: "connection refused"},
		},
		Findings: []api.ClusterFinding{},
	}
	messages := map[string]string{
		api.SeverityInfo:     "Clock of node n2 is 3s off",
		api.SeverityWarning:  "Certificate of node n2 expires in 40h",
		api.SeverityCritical: "Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire",
	}
	kinds := map[string]string{api.SeverityInfo: "clock-skew", api.SeverityWarning: "cert-expires-soon", api.SeverityCritical: "consensus-at-risk"}
	for _, s := range severities {
		st.Findings = append(st.Findings, api.ClusterFinding{Kind: kinds[s], Severity: s, Nodes: []string{"n2"}, Message: messages[s]})
		if s == api.SeverityCritical {
			st.ConsensusAtRisk = expiryN3
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClusterStatusCommand(t *testing.T) {
	t.Run("Table", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {200, statusJSON(t, false, api.SeverityInfo, api.SeverityWarning, api.SeverityCritical)}})
		stdout, stderr, code := runCLI(t, "", "cluster", "status")
		// Times are local: when() formats them as the CLI does, in a
		// width that does not depend on the zone.
		want := "Cluster status from n1 at " + when(statusAt) + "\n" +
			"ID    PEER ADDRESS     API ADDRESS      ROLE          REACHABLE  LAST CONTACT  APPLIED  CERT EXPIRY                        REPORT AGE\n" +
			"n1 *  n1.example:7374  n1.example:7373  leader        yes        0s            120      " + when(expiryN3.AddDate(1, 0, 0)) + " (in 367 days)  2s\n" +
			"n2    n2.example:7374  n2.example:7373  follower      yes        250ms         119      " + when(expiryN2) + " (in 40h)       4s\n" +
			"n3    n3.example:7374  -                - (nonvoter)  no         -             -        -                                  -\n" +
			"\nConsensus at risk from " + when(expiryN3) + " (in 2 days)\n" +
			"\nFINDINGS\n" +
			"CRITICAL  Consensus at risk from 2026-12-01 04:00:00: certificates of n2, n3 expire [consensus-at-risk]\n" +
			"WARNING   Certificate of node n2 expires in 40h [cert-expires-soon]\n" +
			"INFO      Clock of node n2 is 3s off [clock-skew]\n" +
			"\nThe cluster is not healthy.\n"
		if code != exitOK || stdout != want {
			t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
		}
	})
	t.Run("Healthy", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {200, statusJSON(t, true)}})
		stdout, _, code := runCLI(t, "", "cluster", "status")
		if code != exitOK || !strings.HasSuffix(stdout, "\nNo findings.\n\nThe cluster is healthy.\n") || strings.Contains(stdout, "\x1b[") {
			t.Errorf("exit %d, stdout:\n%s", code, stdout)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		body := statusJSON(t, false, api.SeverityWarning)
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {200, body}})
		stdout, stderr, code := runCLI(t, "", "cluster", "status", "--json")
		var got api.ClusterStatus
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if code != exitOK || dec.Decode(&got) != nil || !jsonEqual(stdout, body) {
			t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant the answer:\n%s", code, stderr, stdout, body)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {403, `{"message":"not authorized: insufficient permissions"}`}})
		_, stderr, code := runCLI(t, "", "cluster", "status")
		if code != exitRefused || stderr != "minkms: not authorized: insufficient permissions\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestClusterStatusCheck: --check exits 0 healthy, 1 warning (or not
// healthy), 2 critical, 3 unknown, in place of the usual codes.
func TestClusterStatusCheck(t *testing.T) {
	tests := []struct {
		name   string
		answer answer
		code   int
	}{
		{"Healthy", answer{200, statusJSON(t, true)}, checkOK},
		{"HealthyWithInfo", answer{200, statusJSON(t, true, api.SeverityInfo)}, checkOK},
		{"Warning", answer{200, statusJSON(t, true, api.SeverityWarning, api.SeverityInfo)}, checkWarning},
		{"NotHealthy", answer{200, statusJSON(t, false)}, checkWarning},
		{"Critical", answer{200, statusJSON(t, false, api.SeverityWarning, api.SeverityCritical)}, checkCritical},
		{"Refused", answer{403, `{"message":"not authorized: insufficient permissions"}`}, checkUnknown},
		{"NoLeader", answer{503, `{"message":"no leader: election in progress"}`}, checkUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": tt.answer})
			stdout, stderr, code := runCLI(t, "", "cluster", "status", "--check")
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr %q", code, tt.code, stdout, stderr)
			}
			if tt.code == checkUnknown && !strings.HasPrefix(stderr, "minkms: ") {
				t.Errorf("unknown state without the reason on stderr: %q", stderr)
			}
			if tt.code != checkUnknown && stderr != "" {
				t.Errorf("stderr %q, want none", stderr)
			}
		})
	}
	t.Run("NoServer", func(t *testing.T) {
		setEnv(t, map[string]string{envAPIKey: "x"})
		if _, _, code := runCLI(t, "", "cluster", "status", "--check"); code != checkUnknown {
			t.Errorf("exit %d without a server, want %d", code, checkUnknown)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		srv := MustFakeServer(t, nil)
		srv.Close()
		if _, _, code := runCLI(t, "", "cluster", "status", "--check"); code != checkUnknown {
			t.Errorf("exit %d with no node reachable, want %d", code, checkUnknown)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {200, statusJSON(t, false, api.SeverityCritical)}})
		stdout, _, code := runCLI(t, "", "cluster", "status", "--check", "--json")
		if code != checkCritical || !json.Valid([]byte(stdout)) {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})
	t.Run("Help", func(t *testing.T) {
		setEnv(t, nil)
		stdout, _, _ := runCLI(t, "", "cluster", "status", "--help")
		for _, want := range []string{"3  unknown", "These codes replace the usual ones", "--wait-healthy"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("--help lacks %q", want)
			}
		}
	})
}

func TestClusterStatusWaitHealthy(t *testing.T) {
	poll := waitPollInterval
	waitPollInterval = 10 * time.Millisecond
	t.Cleanup(func() { waitPollInterval = poll })

	t.Run("BecomesHealthy", func(t *testing.T) {
		answers := map[string]answer{"GET /v1/cluster/status": {503, `{"message":"no leader: election in progress"}`}}
		srv := MustFakeServer(t, answers)
		// The fake answers "no leader", then not healthy, then healthy.
		go func() {
			for i, a := range []answer{{200, statusJSON(t, false, api.SeverityWarning)}, {200, statusJSON(t, true)}} {
				for len(srv.Requests()) < 2*(i+1) {
					time.Sleep(2 * time.Millisecond)
				}
				srv.mu.Lock()
				answers["GET /v1/cluster/status"] = a
				srv.mu.Unlock()
			}
		}()
		stdout, stderr, code := runCLI(t, "", "cluster", "status", "--wait-healthy", "10s")
		if code != exitOK || !strings.Contains(stdout, "The cluster is healthy.") {
			t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 3 ||
			!strings.HasPrefix(lines[0], "Waiting for the cluster to be healthy: the status could not be had: ") ||
			lines[1] != "Waiting for the cluster to be healthy: Certificate of node n2 expires in 40h" ||
			!strings.HasPrefix(lines[2], "The cluster is healthy (after ") {
			t.Errorf("progress, each change once:\n%s", stderr)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/cluster/status": {200, statusJSON(t, false)}})
		start := time.Now()
		stdout, stderr, code := runCLI(t, "", "cluster", "status", "--wait-healthy", "200ms")
		if code != exitLocal || stdout != "" ||
			!strings.HasSuffix(stderr, "minkms: the cluster did not become healthy within 200ms: node n3 is unreachable\n") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
		}
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("gave up after %v, want about 200ms", elapsed)
		}
	})
	t.Run("NotWithCheck", func(t *testing.T) {
		MustFakeServer(t, nil)
		if _, stderr, code := runCLI(t, "", "cluster", "status", "--wait-healthy", "1s", "--check"); code != exitLocal || !strings.Contains(stderr, "none of the others can be") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestCertStatusOfNode(t *testing.T) {
	body := `{"pairs":[{"cert":"/etc/minkms/n3.crt","key":"/etc/minkms/n3.key","subject":"CN=n3","issuer":"CN=CA","serial":"3f",
		"fingerprint":"aa","not_after":"2026-12-01T04:00:00Z","effective_expiry":"2026-12-01T04:00:00Z","consecutive_failures":0}],
		"ca":{"path":"/etc/minkms/ca.crt","certificates":[]}}`
	t.Run("Text", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{"GET /v1/tls/status?node=n3": {200, body}})
		// Several endpoints are fine: any node asks n3.
		t.Setenv(envServer, srv.URL+","+srv.URL)
		stdout, stderr, code := runCLI(t, "", "cert", "status", "--node", "n3")
		if code != exitOK || !strings.HasPrefix(stdout, "TLS status of node n3\n") || !strings.Contains(stdout, "  Serial:                3f\n") {
			t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/tls/status?node=n3": {200, body}})
		stdout, _, code := runCLI(t, "", "cert", "status", "--node", "n3", "--json")
		var st api.TLSStatus
		if code != exitOK || json.Unmarshal([]byte(stdout), &st) != nil || st.Pairs[0].Serial != "3f" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
	})
	t.Run("NotMember", func(t *testing.T) {
		MustFakeServer(t, map[string]answer{"GET /v1/tls/status?node=n9": {404, `{"message":"not a member: n9"}`}})
		_, stderr, code := runCLI(t, "", "cert", "status", "--node", "n9")
		if code != exitRefused || stderr != "minkms: not a member: n9\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestSeverityColours(t *testing.T) {
	on := style{color: true}
	if got := severityStyle(on, api.SeverityCritical); got != "\x1b[31mCRITICAL\x1b[0m" {
		t.Errorf("critical = %q", got)
	}
	if got := severityStyle(on, api.SeverityWarning); got != "\x1b[33mWARNING \x1b[0m" {
		t.Errorf("warning = %q", got)
	}
	if got := severityStyle(style{}, api.SeverityCritical); got != "CRITICAL" {
		t.Errorf("without colour = %q", got)
	}
}
