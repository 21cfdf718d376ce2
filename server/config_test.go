package server_test

import (
	"errors"
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
		},
		Cluster: server.ClusterConfig{NodeID: "n1", Advertise: "127.0.0.1:7373", Address: "127.0.0.1:7374"},
		Log:     server.LogConfig{Level: slog.LevelInfo, Format: "text"},
		Limits:  server.LimitsConfig{RequestTimeout: 10 * time.Second},
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
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != server.DefaultAddress || cfg.Cluster.NodeID != server.DefaultNodeID ||
		cfg.Cluster.Advertise != server.DefaultAddress || cfg.TLS.ReloadInterval != server.DefaultReloadInterval ||
		cfg.TLS.WarnBefore != server.DefaultWarnBefore || cfg.Limits.RequestTimeout != server.DefaultRequestTimeout ||
		cfg.Log.Format != "text" || cfg.Log.Level != slog.LevelInfo || cfg.RootKey.File != "/k" {
		t.Errorf("defaults not applied: %+v", *cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // the exact file:line: setting: problem, as a substring of the error
	}{
		{"UnknownField", edit(t, "  format: text", "  format: text\n  colour: true"),
			`minkms.yaml:23: unknown setting "colour"`},
		{"UnknownTopLevelField", goodConfig + "adress: x\n",
			`minkms.yaml:25: unknown setting "adress"`},
		{"BadDuration", edit(t, "reload_interval", "  reload_interval: 60 minutes"),
			`minkms.yaml:14: tls.reload_interval: invalid duration "60 minutes"`},
		{"DurationWithoutUnit", edit(t, "request_timeout", "  request_timeout: 10"),
			`minkms.yaml:24: limits.request_timeout: invalid duration "10"`},
		{"NegativeDuration", edit(t, "warn_before", "  warn_before: -1h"),
			`minkms.yaml:15: tls.warn_before: must be positive`},
		{"ReloadIntervalTooShort", edit(t, "reload_interval", "  reload_interval: 1ns"),
			`minkms.yaml:14: tls.reload_interval: 1ns is too short: use at least 1s`},
		{"RequestTimeoutTooShort", edit(t, "request_timeout", "  request_timeout: 1ms"),
			`minkms.yaml:24: limits.request_timeout: 1ms is too short: use at least 100ms`},
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
			`minkms.yaml:21: log.level: unknown level "loud"`},
		{"BadLogFormat", edit(t, "format: text", "  format: xml"),
			`minkms.yaml:22: log.format: unknown format "xml"`},
		{"BadAddress", edit(t, "address: 127.0.0.1:7373", "address: localhost"),
			`minkms.yaml:2: address: invalid address "localhost"`},
		{"BadNodeID", edit(t, "node_id", "  node_id: a/b"),
			`minkms.yaml:17: cluster.node_id: invalid node id "a/b"`},
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
