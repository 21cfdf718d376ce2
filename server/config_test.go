package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/server"
)

// adminID is a well-formed identity for config files.
var adminID = "h1:" + strings.Repeat("A", 43)

// goodConfig is a complete config file; the tests edit it line by line.
var goodConfig = `version: v1
address: 127.0.0.1:7373
data_dir: /var/lib/minkms
root_key:
  env: MINKMS_ROOT_KEY
admins:
  - ` + adminID + `
tls:
  certs:
    - cert: /etc/minkms/node.crt
      key: /etc/minkms/node.key
  ca: /etc/minkms/ca.crt
  verify_clients: false
  reload_interval: 60m
  warn_before: 48h
cluster:
  node_id: n1
  advertise: 127.0.0.1:7373
  address: 127.0.0.1:7374
  advertise_peer: kms-1.example:7374
  bootstrap_expect: 3
  join:
    - kms-2.example:7374
    - kms-3.example:7374
  max_stale: 20s
  raft:
    heartbeat_timeout: 800ms
    election_timeout: 1200ms
    leader_lease_timeout: 400ms
    snapshot_threshold: 4096
    snapshot_interval: 90s
    trailing_logs: 2048
log:
  level: info
  format: text
limits:
  request_timeout: 10s
`

// edit replaces the first line of goodConfig that contains old by new
// (which may hold several lines or none).
func edit(tb testing.TB, old, new string) string {
	tb.Helper()
	lines := strings.Split(goodConfig, "\n")
	for i, l := range lines {
		if strings.Contains(l, old) {
			if new == "" {
				lines = append(lines[:i], lines[i+1:]...)
			} else {
				lines[i] = new
			}
			return strings.Join(lines, "\n")
		}
	}
	tb.Fatalf("no line of the config contains %q", old)
	return ""
}

func TestParseConfig(t *testing.T) {
	cfg, err := server.ParseConfig("minkms.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatalf("ParseConfig(good) = %v", err)
	}
	want := server.Config{
		Address: "127.0.0.1:7373",
		DataDir: "/var/lib/minkms",
		RootKey: server.RootKeyConfig{Env: "MINKMS_ROOT_KEY"},
		TLS: server.TLSConfig{
			Certs:          []server.CertPair{{Cert: "/etc/minkms/node.crt", Key: "/etc/minkms/node.key"}},
			CA:             "/etc/minkms/ca.crt",
			ReloadInterval: 60 * time.Minute,
			WarnBefore:     48 * time.Hour,
			MinVersion:     tls.VersionTLS12,
		},
		Cluster: server.ClusterConfig{
			NodeID:          "n1",
			Advertise:       "127.0.0.1:7373",
			Address:         "127.0.0.1:7374",
			AdvertisePeer:   "kms-1.example:7374",
			BootstrapExpect: 3,
			Join:            []string{"kms-2.example:7374", "kms-3.example:7374"},
			MaxStale:        20 * time.Second,
			Raft: server.RaftConfig{
				HeartbeatTimeout:   800 * time.Millisecond,
				ElectionTimeout:    1200 * time.Millisecond,
				LeaderLeaseTimeout: 400 * time.Millisecond,
				SnapshotInterval:   90 * time.Second,
				SnapshotThreshold:  4096,
				TrailingLogs:       2048,
			},
		},
		Log:    server.LogConfig{Level: slog.LevelInfo, Format: "text"},
		Limits: server.LimitsConfig{RequestTimeout: 10 * time.Second, UnauthenticatedIdleTimeout: server.DefaultUnauthenticatedIdleTimeout},
	}
	if len(cfg.Admins) != 1 || string(cfg.Admins[0]) != adminID {
		t.Errorf("Admins = %v, want [%s]", cfg.Admins, adminID)
	}
	cfg.Admins = nil
	if got, want := cfgString(cfg), cfgString(&want); got != want {
		t.Errorf("ParseConfig(good) =\n%s\nwant\n%s", got, want)
	}
}

func cfgString(c *server.Config) string {
	return strings.ReplaceAll(strings.TrimSpace(sprintf("%+v", *c)), " ", "\n")
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := server.ParseConfig("minkms.yaml", []byte(`version: v1
data_dir: /d
root_key: { file: /k }
tls: { certs: [ { cert: c, key: k } ], ca: ca.crt }
cluster: { node_id: n7 }
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != server.DefaultAddress || cfg.Cluster.NodeID != "n7" ||
		cfg.Cluster.Advertise != server.DefaultAddress || cfg.TLS.ReloadInterval != server.DefaultReloadInterval ||
		cfg.TLS.WarnBefore != server.DefaultWarnBefore || cfg.Limits.RequestTimeout != server.DefaultRequestTimeout ||
		cfg.Log.Format != "text" || cfg.Log.Level != slog.LevelInfo || cfg.RootKey.File != "/k" ||
		cfg.Limits.MaxConnections != 0 || cfg.Limits.MaxConnectionsPerIP != 0 || cfg.Limits.UnauthenticatedIdleTimeout != 10*time.Second {
		t.Errorf("defaults not applied: %+v", *cfg)
	}
	wantCluster := server.ClusterConfig{
		NodeID:        "n7",
		Advertise:     server.DefaultAddress,
		Address:       server.DefaultClusterAddress,
		AdvertisePeer: server.DefaultClusterAddress,
		MaxStale:      server.DefaultMaxStale,
		Raft: server.RaftConfig{
			HeartbeatTimeout:   server.DefaultHeartbeatTimeout,
			ElectionTimeout:    server.DefaultElectionTimeout,
			LeaderLeaseTimeout: server.DefaultLeaderLeaseTimeout,
			SnapshotInterval:   server.DefaultSnapshotInterval,
			SnapshotThreshold:  server.DefaultSnapshotThreshold,
			TrailingLogs:       server.DefaultTrailingLogs,
		},
	}
	if got, want := sprintf("%+v", cfg.Cluster), sprintf("%+v", wantCluster); got != want {
		t.Errorf("cluster defaults =\n%s\nwant\n%s", got, want)
	}
	// The documented defaults (README, docs/deploy.md), which give a
	// failover within about 1.5s on a LAN.
	if server.DefaultHeartbeatTimeout != 600*time.Millisecond || server.DefaultElectionTimeout != 600*time.Millisecond ||
		server.DefaultLeaderLeaseTimeout != 300*time.Millisecond || server.DefaultSnapshotInterval != 2*time.Minute ||
		server.DefaultSnapshotThreshold != 8192 || server.DefaultTrailingLogs != 10240 || server.DefaultMaxStale != 30*time.Second {
		t.Error("the raft or max_stale defaults differ from the documented ones")
	}
}

// TestParseConfigAdvertisePeer: advertise_peer defaults to the bind address
// unless that binds a wildcard host, and then it must be given.
func TestParseConfigAdvertisePeer(t *testing.T) {
	for _, tc := range []struct {
		address, advertisePeer, want string
	}{
		{"127.0.0.1:7374", "", "127.0.0.1:7374"},
		{"10.0.0.5:7374", "", "10.0.0.5:7374"},
		{"kms-1.example:7374", "", "kms-1.example:7374"},
		{"0.0.0.0:7374", "kms-1.example:7374", "kms-1.example:7374"},
		{"'[::]:7374'", "[2001:db8::1]:7374", "[2001:db8::1]:7374"},
		{"':7374'", "kms-1.example:7374", "kms-1.example:7374"},
	} {
		file := edit(t, "address: 127.0.0.1:7374", "  address: "+tc.address)
		file = strings.Replace(file, "  advertise_peer: kms-1.example:7374\n", "", 1)
		if tc.advertisePeer != "" {
			file = strings.Replace(file, "  bootstrap_expect:", "  advertise_peer: \""+tc.advertisePeer+"\"\n  bootstrap_expect:", 1)
		}
		cfg, err := server.ParseConfig("minkms.yaml", []byte(file))
		if err != nil {
			t.Errorf("address %s, advertise_peer %q: %v", tc.address, tc.advertisePeer, err)
			continue
		}
		if cfg.Cluster.AdvertisePeer != tc.want {
			t.Errorf("address %s, advertise_peer %q: AdvertisePeer = %q, want %q", tc.address, tc.advertisePeer, cfg.Cluster.AdvertisePeer, tc.want)
		}
	}
}

// TestParseConfigConnectionLimits: the limits of the client API's
// connections, and their errors with file and line.
func TestParseConfigConnectionLimits(t *testing.T) {
	limits := func(lines string) string { return edit(t, "request_timeout", "  request_timeout: 10s\n"+lines) }
	cfg, err := server.ParseConfig("minkms.yaml", []byte(limits("  max_connections: 5000\n  max_connections_per_ip: 100\n  unauthenticated_idle_timeout: 3s")))
	if err != nil {
		t.Fatal(err)
	}
	want := server.LimitsConfig{RequestTimeout: 10 * time.Second, MaxConnections: 5000, MaxConnectionsPerIP: 100, UnauthenticatedIdleTimeout: 3 * time.Second}
	if cfg.Limits != want {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, want)
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"MaxConnectionsZero", "  max_connections: 0", `minkms.yaml:38: limits.max_connections: must be between 1 and 16777216, not 0`},
		{"MaxConnectionsNegative", "  max_connections: -1", `minkms.yaml:38: limits.max_connections: must be between 1 and 16777216, not -1`},
		{"MaxConnectionsHuge", "  max_connections: 100000000", `minkms.yaml:38: limits.max_connections: must be between 1 and 16777216, not 100000000`},
		{"MaxConnectionsNotNumber", "  max_connections: many", `minkms.yaml:38: cannot unmarshal !!str`},
		{"MaxPerIPNegative", "  max_connections_per_ip: -5", `minkms.yaml:38: limits.max_connections_per_ip: must be between 0 and 16777216, not -5`},
		{"IdleTimeoutTooShort", "  unauthenticated_idle_timeout: 10ms", `minkms.yaml:38: limits.unauthenticated_idle_timeout: 10ms is too short: use at least 100ms`},
		{"IdleTimeoutNoUnit", "  unauthenticated_idle_timeout: 10", `minkms.yaml:38: limits.unauthenticated_idle_timeout: invalid duration "10"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseConfig("minkms.yaml", []byte(limits(tc.lines)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConfig = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("PerIPZeroIsOff", func(t *testing.T) {
		cfg, err := server.ParseConfig("minkms.yaml", []byte(limits("  max_connections_per_ip: 0")))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Limits.MaxConnectionsPerIP != 0 {
			t.Errorf("MaxConnectionsPerIP = %d, want 0 (off)", cfg.Limits.MaxConnectionsPerIP)
		}
	})
}

// TestParseConfigREADME: the config example in the README is a valid file.
func TestParseConfigREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, part := range strings.Split(string(readme), "```yaml\n")[1:] {
		if b, _, ok := strings.Cut(part, "```"); ok && strings.HasPrefix(b, "version: v1") {
			block = b
		}
	}
	if block == "" {
		t.Fatal("README has no config example")
	}
	if _, err := server.ParseConfig("README.md", []byte(block)); err != nil {
		t.Errorf("the README's config example is refused: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // the exact file:line: setting: problem, as a substring of the error
	}{
		{"UnknownField", edit(t, "  format: text", "  format: text\n  colour: true"),
			`minkms.yaml:36: unknown setting "colour"`},
		{"UnknownTopLevelField", goodConfig + "adress: x\n",
			`minkms.yaml:38: unknown setting "adress"`},
		{"UnknownRaftField", edit(t, "trailing_logs", "    trailing_logs: 2048\n    commit_timeout: 50ms"),
			`minkms.yaml:33: unknown setting "commit_timeout"`},
		{"BadDuration", edit(t, "reload_interval", "  reload_interval: 60 minutes"),
			`minkms.yaml:14: tls.reload_interval: invalid duration "60 minutes"`},
		{"DurationWithoutUnit", edit(t, "request_timeout", "  request_timeout: 10"),
			`minkms.yaml:37: limits.request_timeout: invalid duration "10"`},
		{"NegativeDuration", edit(t, "warn_before", "  warn_before: -1h"),
			`minkms.yaml:15: tls.warn_before: must be positive`},
		{"ReloadIntervalTooShort", edit(t, "reload_interval", "  reload_interval: 1ns"),
			`minkms.yaml:14: tls.reload_interval: 1ns is too short: use at least 1s`},
		{"BadTLSMinVersion", edit(t, "warn_before", "  warn_before: 48h\n  min_version: '1.1'"),
			`minkms.yaml:16: tls.min_version: unsupported TLS version "1.1": use 1.2 or 1.3`},
		{"TLSMinVersionWithPrefix", edit(t, "warn_before", "  warn_before: 48h\n  min_version: TLS1.3"),
			`minkms.yaml:16: tls.min_version: unsupported TLS version "TLS1.3": use 1.2 or 1.3`},
		{"RequestTimeoutTooShort", edit(t, "request_timeout", "  request_timeout: 1ms"),
			`minkms.yaml:37: limits.request_timeout: 1ms is too short: use at least 100ms`},
		{"MissingRootKey", strings.Replace(goodConfig, "root_key:\n  env: MINKMS_ROOT_KEY\n", "root_key: {}\n", 1),
			`minkms.yaml:4: root_key: set env (an environment variable) or file`},
		{"NoRootKey", strings.Replace(goodConfig, "root_key:\n  env: MINKMS_ROOT_KEY\n", "", 1),
			`minkms.yaml:1: root_key: missing`},
		{"RootKeyEnvAndFile", edit(t, "env: MINKMS_ROOT_KEY", "  env: MINKMS_ROOT_KEY\n  file: /etc/minkms/root.key"),
			`minkms.yaml:4: root_key: set either env or file, not both`},
		{"EmptyRootKeyFile", edit(t, "env: MINKMS_ROOT_KEY", "  file: ''"),
			`minkms.yaml:5: root_key.file: file name must not be empty`},
		{"BadVersion", edit(t, "version: v1", "version: v2"),
			`minkms.yaml:1: version: unsupported version "v2"`},
		{"NoVersion", edit(t, "version: v1", ""),
			`version: missing`},
		{"EmptyCertFile", edit(t, "- cert: /etc/minkms/node.crt", "    - cert: ''"),
			`minkms.yaml:10: tls.certs[0].cert: file name must not be empty`},
		{"NoCerts", strings.Replace(goodConfig, "  certs:\n    - cert: /etc/minkms/node.crt\n      key: /etc/minkms/node.key\n", "  certs: []\n", 1),
			`minkms.yaml:9: tls.certs: missing`},
		{"BadAdmin", edit(t, adminID, "  - alice"),
			`minkms.yaml:7: admins[0]: not an identity`},
		{"BadLogLevel", edit(t, "level: info", "  level: loud"),
			`minkms.yaml:34: log.level: unknown level "loud"`},
		{"BadLogFormat", edit(t, "format: text", "  format: xml"),
			`minkms.yaml:35: log.format: unknown format "xml"`},
		{"LogBufferTooSmall", edit(t, "format: text", "  format: text\n  buffer: 5"),
			`minkms.yaml:36: log.buffer: must be between 100 and 10000000, not 5`},
		{"LogBufferBytesTooSmall", edit(t, "format: text", "  format: text\n  buffer_bytes: 1000"),
			`minkms.yaml:36: log.buffer_bytes: must be between 65536`},
		{"AuditRequiredWithoutFile", edit(t, "format: text", "  format: text\n  audit_required: true"),
			`minkms.yaml:36: log.audit_required: needs log.audit_file`},
		{"BadAddress", edit(t, "address: 127.0.0.1:7373", "address: localhost"),
			`minkms.yaml:2: address: invalid address "localhost"`},
		{"BadNodeID", edit(t, "node_id", "  node_id: a/b"),
			`minkms.yaml:17: cluster.node_id: invalid node id "a/b"`},
		{"NoNodeID", edit(t, "node_id", ""),
			`minkms.yaml:16: cluster.node_id: missing: name this node`},
		{"NoCluster", goodConfig[:strings.Index(goodConfig, "cluster:")] + "log:\n  level: info\n",
			`minkms.yaml:1: cluster.node_id: missing`},
		{"BadClusterAddress", edit(t, "address: 127.0.0.1:7374", "  address: kms-1.example"),
			`minkms.yaml:19: cluster.address: invalid address "kms-1.example": want host:port`},
		{"AdvertisePeerRequired", strings.Replace(edit(t, "address: 127.0.0.1:7374", "  address: 0.0.0.0:7374"), "  advertise_peer: kms-1.example:7374\n", "", 1),
			`minkms.yaml:16: cluster.advertise_peer: missing: cluster.address 0.0.0.0:7374 binds every interface`},
		{"AdvertisePeerRequiredIPv6", strings.Replace(edit(t, "address: 127.0.0.1:7374", "  address: '[::]:7374'"), "  advertise_peer: kms-1.example:7374\n", "", 1),
			`minkms.yaml:16: cluster.advertise_peer: missing: cluster.address [::]:7374 binds every interface`},
		{"AdvertisePeerRequiredNoHost", strings.Replace(edit(t, "address: 127.0.0.1:7374", "  address: ':7374'"), "  advertise_peer: kms-1.example:7374\n", "", 1),
			`minkms.yaml:16: cluster.advertise_peer: missing: cluster.address :7374 binds every interface`},
		{"AdvertisePeerWildcard", edit(t, "advertise_peer", "  advertise_peer: 0.0.0.0:7374"),
			`minkms.yaml:20: cluster.advertise_peer: "0.0.0.0:7374" names no host that can be dialed`},
		{"AdvertisePeerNoPort", edit(t, "advertise_peer", "  advertise_peer: kms-1.example"),
			`minkms.yaml:20: cluster.advertise_peer: invalid address "kms-1.example": want host:port`},
		{"AdvertisePeerPortZero", edit(t, "advertise_peer", "  advertise_peer: kms-1.example:0"),
			`minkms.yaml:20: cluster.advertise_peer: invalid port in "kms-1.example:0"`},
		{"BootstrapAndBootstrapExpect", edit(t, "bootstrap_expect", "  bootstrap: true\n  bootstrap_expect: 3"),
			`minkms.yaml:22: cluster.bootstrap_expect: set either bootstrap (a one-node cluster) or bootstrap_expect`},
		{"BootstrapExpectZero", edit(t, "bootstrap_expect", "  bootstrap_expect: 0"),
			`minkms.yaml:21: cluster.bootstrap_expect: must be between 1 and 9, not 0`},
		{"BootstrapExpectNegative", edit(t, "bootstrap_expect", "  bootstrap_expect: -3"),
			`minkms.yaml:21: cluster.bootstrap_expect: must be between 1 and 9, not -3`},
		{"BootstrapExpectTooLarge", edit(t, "bootstrap_expect", "  bootstrap_expect: 10"),
			`minkms.yaml:21: cluster.bootstrap_expect: must be between 1 and 9, not 10`},
		{"BootstrapExpectWithoutJoin", strings.Replace(goodConfig, "  join:\n    - kms-2.example:7374\n    - kms-3.example:7374\n", "", 1),
			`minkms.yaml:21: cluster.bootstrap_expect: needs join`},
		{"BootstrapExpectWithEmptyJoin", strings.Replace(goodConfig, "  join:\n    - kms-2.example:7374\n    - kms-3.example:7374\n", "  join: []\n", 1),
			`minkms.yaml:21: cluster.bootstrap_expect: needs join`},
		{"JoinNotHostPort", edit(t, "- kms-3.example:7374", "    - kms-3.example"),
			`minkms.yaml:24: cluster.join[1]: invalid address "kms-3.example": want host:port`},
		{"JoinNoHost", edit(t, "- kms-3.example:7374", "    - ':7374'"),
			`minkms.yaml:24: cluster.join[1]: invalid address ":7374": want host:port`},
		{"JoinWildcard", edit(t, "- kms-3.example:7374", "    - 0.0.0.0:7374"),
			`minkms.yaml:24: cluster.join[1]: "0.0.0.0:7374" names no host that can be dialed`},
		{"JoinBadPort", edit(t, "- kms-3.example:7374", "    - kms-3.example:99999"),
			`minkms.yaml:24: cluster.join[1]: invalid port in "kms-3.example:99999"`},
		{"JoinDuplicate", edit(t, "- kms-3.example:7374", "    - KMS-2.example:7374"),
			`minkms.yaml:24: cluster.join[1]: KMS-2.example:7374 is listed twice: see join[0]`},
		{"JoinNotAList", strings.Replace(goodConfig, "  join:\n    - kms-2.example:7374\n    - kms-3.example:7374\n", "  join: kms-2.example:7374\n", 1),
			`minkms.yaml:22: cannot unmarshal`},
		{"MaxStaleTooShort", edit(t, "max_stale", "  max_stale: 500ms"),
			`minkms.yaml:25: cluster.max_stale: 500ms is too short: use at least 1s`},
		{"MaxStaleNegative", edit(t, "max_stale", "  max_stale: -30s"),
			`minkms.yaml:25: cluster.max_stale: must be positive, not -30s`},
		{"MaxStaleBadDuration", edit(t, "max_stale", "  max_stale: 30"),
			`minkms.yaml:25: cluster.max_stale: invalid duration "30"`},
		{"HeartbeatTooShort", edit(t, "heartbeat_timeout", "    heartbeat_timeout: 1ms"),
			`minkms.yaml:27: cluster.raft.heartbeat_timeout: 1ms is too short: use at least 5ms`},
		{"ElectionBadDuration", edit(t, "election_timeout", "    election_timeout: soon"),
			`minkms.yaml:28: cluster.raft.election_timeout: invalid duration "soon"`},
		{"ElectionTimeoutZero", edit(t, "election_timeout", "    election_timeout: 0s"),
			`minkms.yaml:28: cluster.raft.election_timeout: must be positive, not 0s`},
		{"LeaderLeaseTooShort", edit(t, "leader_lease_timeout", "    leader_lease_timeout: 4ms"),
			`minkms.yaml:29: cluster.raft.leader_lease_timeout: 4ms is too short: use at least 5ms`},
		{"SnapshotIntervalTooShort", edit(t, "snapshot_interval", "    snapshot_interval: 1ms"),
			`minkms.yaml:31: cluster.raft.snapshot_interval: 1ms is too short: use at least 5ms`},
		{"LeaderLeaseLongerThanHeartbeat", edit(t, "leader_lease_timeout", "    leader_lease_timeout: 900ms"),
			`minkms.yaml:29: cluster.raft.leader_lease_timeout: 900ms is longer than heartbeat_timeout (800ms): raft needs leader_lease_timeout <= heartbeat_timeout`},
		{"ElectionShorterThanHeartbeat", edit(t, "election_timeout", "    election_timeout: 700ms"),
			`minkms.yaml:28: cluster.raft.election_timeout: 700ms is shorter than heartbeat_timeout (800ms): raft needs election_timeout >= heartbeat_timeout`},
		{"DefaultElectionShorterThanHeartbeat", strings.Replace(edit(t, "heartbeat_timeout", "    heartbeat_timeout: 2s"), "    election_timeout: 1200ms\n", "", 1),
			`minkms.yaml:26: cluster.raft.election_timeout: 600ms is shorter than heartbeat_timeout (2s)`},
		{"SnapshotThresholdZero", edit(t, "snapshot_threshold", "    snapshot_threshold: 0"),
			`minkms.yaml:30: cluster.raft.snapshot_threshold: must be at least 1, not 0`},
		{"TrailingLogsNegative", edit(t, "trailing_logs", "    trailing_logs: -1"),
			`minkms.yaml:32: cluster.raft.trailing_logs: must be at least 1, not -1`},
		{"TrailingLogsZero", edit(t, "trailing_logs", "    trailing_logs: 0"),
			`minkms.yaml:32: cluster.raft.trailing_logs: must be at least 1, not 0`},
		{"SnapshotThresholdNotANumber", edit(t, "snapshot_threshold", "    snapshot_threshold: many"),
			`minkms.yaml:30: cannot unmarshal`},
		{"MissingCA", strings.Replace(edit(t, "verify_clients", "  verify_clients: true"), "  ca: /etc/minkms/ca.crt\n", "", 1),
			`minkms.yaml:8: tls.ca: missing`},
		{"WrongType", edit(t, "verify_clients", "  verify_clients: maybe"),
			`minkms.yaml:13: cannot unmarshal`},
		{"Syntax", edit(t, "data_dir", "data_dir: [unclosed"),
			`minkms.yaml:`},
		{"Empty", "\n", `minkms.yaml: the file is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.ParseConfig("minkms.yaml", []byte(tt.file))
			if err == nil {
				t.Fatalf("ParseConfig succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseConfig error =\n%v\nwant it to contain\n%s", err, tt.want)
			}
			var ce *server.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *server.ConfigError", err)
			}
		})
	}
}

func TestParseConfigReportsEveryError(t *testing.T) {
	file := edit(t, "version: v1", "version: v9")
	file = strings.Replace(file, "reload_interval: 60m", "reload_interval: soon", 1)
	_, err := server.ParseConfig("minkms.yaml", []byte(file))
	if err == nil {
		t.Fatal("ParseConfig succeeded")
	}
	for _, want := range []string{"minkms.yaml:1: version:", "minkms.yaml:14: tls.reload_interval:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestParseConfigBadRaftValueAlone: a raft setting that does not parse is
// reported once, not also compared with the default that stands in for it.
func TestParseConfigBadRaftValueAlone(t *testing.T) {
	file := edit(t, "heartbeat_timeout", "    heartbeat_timeout: 2 s")
	file = strings.Replace(file, "leader_lease_timeout: 400ms", "leader_lease_timeout: 1500ms", 1)
	file = strings.Replace(file, "election_timeout: 1200ms", "election_timeout: 2s", 1)
	_, err := server.ParseConfig("minkms.yaml", []byte(file))
	if err == nil {
		t.Fatal("ParseConfig succeeded")
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 1 || !strings.Contains(err.Error(), "minkms.yaml:27: cluster.raft.heartbeat_timeout: invalid duration") {
		t.Errorf("ParseConfig error =\n%v\nwant only the bad heartbeat_timeout (%d errors)", err, got)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("File", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "minkms.yaml")
		if err := os.WriteFile(path, []byte(edit(t, "version: v1", "version: v0")), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := server.LoadConfig(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+":1: version:") {
			t.Errorf("LoadConfig = %v, want an error at %s:1", err, path)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		_, err := server.LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadConfig = %v, want an error wrapping os.ErrNotExist", err)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte(goodConfig + "unknown: 1\n"))
	f.Add([]byte(strings.Replace(goodConfig, "60m", "sixty", 1)))
	f.Add([]byte(strings.Replace(goodConfig, "10s", "-3h", 1)))
	f.Add([]byte(strings.Replace(goodConfig, "version: v1", "version: v2", 1)))
	f.Add([]byte("version: v1\nroot_key: [1, 2]\ntls: 7\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte(strings.Replace(goodConfig, "bootstrap_expect: 3", "bootstrap_expect: 99999999999999999999", 1)))
	f.Add([]byte(strings.Replace(goodConfig, "trailing_logs: 2048", "trailing_logs: 1e30", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := server.ParseConfig("fuzz.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("ParseConfig = %v, %v: want exactly one of a config and an error", cfg, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}

func TestDevConfigCluster(t *testing.T) {
	for _, tc := range []struct{ api, peer string }{
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"127.0.0.1:7373", "127.0.0.1:0"}, // alone: a free port, so that it collides with nothing
		{"0.0.0.0:7383", "127.0.0.1:0"},
	} {
		cfg, info, err := server.DevConfig(tc.api)
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(info.DataDir)
		c := cfg.Cluster
		if c.NodeID != "dev" || !c.Bootstrap || c.BootstrapExpect != 0 || len(c.Join) != 0 ||
			c.Address != tc.peer || c.AdvertisePeer != tc.peer || c.Advertise != tc.api {
			t.Errorf("DevConfig(%s).Cluster = %+v, want node dev bootstrapping alone with peer address %s", tc.api, c, tc.peer)
		}
		if c.MaxStale != server.DefaultMaxStale || c.Raft.HeartbeatTimeout != server.DefaultHeartbeatTimeout ||
			c.Raft.SnapshotThreshold != server.DefaultSnapshotThreshold {
			t.Errorf("DevConfig(%s): cluster defaults not filled: %+v", tc.api, c)
		}
	}
}

// TestNewChecksClusterConfig: a Config built by a program is held to the
// same cluster rules as a file, and gets the same defaults.
func TestNewChecksClusterConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *server.ClusterConfig)
		want   string
	}{
		{"NoNodeID", func(c *server.ClusterConfig) { c.NodeID = "" }, "cluster.node_id: missing"},
		{"BootstrapAndBootstrapExpect", func(c *server.ClusterConfig) { c.BootstrapExpect = 3; c.Join = []string{"n2.test:7374"} },
			"cluster.bootstrap_expect: set either bootstrap"},
		{"BootstrapExpectWithoutJoin", func(c *server.ClusterConfig) { c.Bootstrap, c.BootstrapExpect = false, 3 },
			"cluster.bootstrap_expect: needs join"},
		{"WildcardWithoutAdvertisePeer", func(c *server.ClusterConfig) { c.Address, c.AdvertisePeer = "0.0.0.0:7374", "" },
			"cluster.advertise_peer: missing"},
		{"JoinDuplicate", func(c *server.ClusterConfig) { c.Join = []string{"n2.test:7374", "n2.test:7374"} },
			"cluster.join[1]: n2.test:7374 is listed twice"},
		{"LeaseLongerThanHeartbeat", func(c *server.ClusterConfig) { c.Raft.LeaderLeaseTimeout = 2 * time.Second },
			"cluster.raft.leader_lease_timeout: 2s is longer than heartbeat_timeout (600ms)"},
		{"MaxStaleTooShort", func(c *server.ClusterConfig) { c.MaxStale = time.Millisecond },
			"cluster.max_stale: 1ms is too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, info, err := server.DevConfig("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(info.DataDir)
			tc.change(&cfg.Cluster)
			srv, err := server.New(context.Background(), cfg, nil)
			if err == nil {
				srv.Close()
				t.Fatalf("New succeeded, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTLSManagerConfig: the node's certificate manager and `minkms cert
// check --config` are built from the same derivation of host and pairs.
func TestTLSManagerConfig(t *testing.T) {
	for _, tc := range []struct{ advertise, host string }{
		{"kms-1.example:7373", "kms-1.example"},
		{"10.0.0.5:7373", "10.0.0.5"},
		{"0.0.0.0:7373", ""},
		{"'[::]:7373'", ""},
	} {
		cfg, err := server.ParseConfig("minkms.yaml", []byte(edit(t, "advertise: 127.0.0.1:7373", "  advertise: "+tc.advertise)))
		if err != nil {
			t.Fatal(err)
		}
		tc2 := cfg.TLSManagerConfig()
		if tc2.Host != tc.host {
			t.Errorf("advertise %s: Host = %q, want %q", tc.advertise, tc2.Host, tc.host)
		}
		if len(tc2.Certs) != 1 || tc2.Certs[0].Cert != "/etc/minkms/node.crt" || tc2.Certs[0].Key != "/etc/minkms/node.key" ||
			tc2.CA != "/etc/minkms/ca.crt" || tc2.ReloadInterval != 60*time.Minute || tc2.WarnBefore != 48*time.Hour {
			t.Errorf("TLSManagerConfig = %+v, want the file's pairs, CA and timings", tc2)
		}
		if cc := tc2.CheckConfig(); cc.Host != tc2.Host || cc.CA != tc2.CA || cc.WarnBefore != tc2.WarnBefore || len(cc.Certs) != 1 {
			t.Errorf("CheckConfig = %+v, want what the manager loads", cc)
		}
	}
}

// TestTLSMinVersion: tls.min_version reaches the certificate manager; 1.2 is
// the default, and the YAML number 1.3 needs no quotes.
func TestTLSMinVersion(t *testing.T) {
	for _, tc := range []struct {
		line string
		want uint16
	}{
		{"", tls.VersionTLS12},
		{"  min_version: 1.2", tls.VersionTLS12},
		{"  min_version: 1.3", tls.VersionTLS13},
		{"  min_version: '1.3'", tls.VersionTLS13},
	} {
		cfg, err := server.ParseConfig("minkms.yaml", []byte(edit(t, "warn_before", "  warn_before: 48h\n"+tc.line)))
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := cfg.TLSManagerConfig().MinVersion; got != tc.want {
			t.Errorf("%q: MinVersion = %#04x, want %#04x", tc.line, got, tc.want)
		}
	}
}

// TestParseConfigDebug: debug.pprof is off by default, on when true, and a
// value that is not a boolean is refused with its line.
func TestParseConfigDebug(t *testing.T) {
	cfg, err := server.ParseConfig("minkms.yaml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Debug.PProf {
		t.Error("debug.pprof is on by default")
	}
	if cfg, err = server.ParseConfig("minkms.yaml", []byte(goodConfig+"debug:\n  pprof: true\n")); err != nil || !cfg.Debug.PProf {
		t.Errorf("debug.pprof: true: %v, %+v", err, cfg)
	}
	_, err = server.ParseConfig("minkms.yaml", []byte(goodConfig+"debug:\n  pprof: sometimes\n"))
	if err == nil || !strings.Contains(err.Error(), "minkms.yaml:39:") {
		t.Errorf("debug.pprof: sometimes: %v, want an error at minkms.yaml:39", err)
	}
	_, err = server.ParseConfig("minkms.yaml", []byte(goodConfig+"debug:\n  profile: true\n"))
	if err == nil || !strings.Contains(err.Error(), `minkms.yaml:39: unknown setting "profile"`) {
		t.Errorf("debug.profile: %v, want an unknown setting at minkms.yaml:39", err)
	}
}

// TestParseConfigCache: cache.max_keys sizes kms's cache; 0 turns it off;
// out-of-range values are refused with file and line.
func TestParseConfigCache(t *testing.T) {
	withCache := func(line string) []byte { return []byte(goodConfig + "cache:\n" + line + "\n") }
	line := strings.Count(goodConfig, "\n") + 2
	for _, tc := range []struct {
		name, line string
		want       int
	}{
		{"Absent", "", 0},
		{"Set", "  max_keys: 500", 500},
		{"ZeroIsOff", "  max_keys: 0", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := server.ParseConfig("minkms.yaml", withCache(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Cache.MaxKeys != tc.want {
				t.Errorf("Cache.MaxKeys = %d, want %d", cfg.Cache.MaxKeys, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, line, want string }{
		{"Negative", "  max_keys: -1", fmt.Sprintf("minkms.yaml:%d: cache.max_keys: must be between 0 (no cache) and 10000000, not -1", line)},
		{"Huge", "  max_keys: 20000000", fmt.Sprintf("minkms.yaml:%d: cache.max_keys: must be between 0", line)},
		{"Unknown", "  max_rings: 5", fmt.Sprintf("minkms.yaml:%d:", line)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseConfig("minkms.yaml", withCache(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConfig = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
