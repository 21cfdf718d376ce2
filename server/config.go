package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/tlsmgr"
)

// ConfigVersion is the only config file version this build reads.
const ConfigVersion = "v1"

// Defaults for optional settings.
const (
	DefaultAddress        = "127.0.0.1:7373"
	DefaultClusterAddress = "127.0.0.1:7374"
	DefaultReloadInterval = 60 * time.Minute
	DefaultWarnBefore     = 48 * time.Hour
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxStale       = 30 * time.Second

	// DefaultUnauthenticatedIdleTimeout is how long a client API
	// connection that has not made an authenticated request may stay idle
	// (limits.unauthenticated_idle_timeout).
	DefaultUnauthenticatedIdleTimeout = 10 * time.Second
)

// Defaults of the raft settings (cluster.raft), those of package cluster:
// with them a LAN cluster elects a new leader within about 1.5s of losing
// one (3s at worst). Across a WAN, raise heartbeat_timeout and
// election_timeout together.
const (
	DefaultHeartbeatTimeout   = cluster.DefaultHeartbeatTimeout
	DefaultElectionTimeout    = cluster.DefaultElectionTimeout
	DefaultLeaderLeaseTimeout = cluster.DefaultLeaderLeaseTimeout
	DefaultSnapshotInterval   = cluster.DefaultSnapshotInterval
	DefaultSnapshotThreshold  = cluster.DefaultSnapshotThreshold
	DefaultTrailingLogs       = cluster.DefaultTrailingLogs
)

// MaxBootstrapExpect is the largest cluster.bootstrap_expect: a raft cluster
// of more voters gets slower without getting safer.
const MaxBootstrapExpect = 9

// Config is the configuration of one node, as read from its YAML file
// (see ParseConfig) and completed with defaults.
type Config struct {
	Address string        // the client API listener, host:port
	DataDir string        // state.db and raft/ live here
	RootKey RootKeyConfig // where the cluster root key comes from
	Admins  []kms.Identity
	TLS     TLSConfig
	Cluster ClusterConfig
	Log     LogConfig
	Limits  LimitsConfig
	Debug   DebugConfig
	Cache   CacheConfig

	// CheckStateFile, if set, checks the consistency of the state file at
	// path; the node calls it at start when it did not stop cleanly the
	// last time. It is set by programs, never read from a file: the check
	// must run in a process of its own (`minkms admin check`), because
	// bbolt's checker may crash on the very damage it looks for.
	CheckStateFile func(ctx context.Context, path string) error
}

// RootKeyConfig says where the root key comes from: exactly one of the
// environment variable Env or the file File, or, for programs that hold the
// key in memory (DevConfig), Key in its text form ("r1:...").
type RootKeyConfig struct {
	Env  string
	File string
	Key  string // set by programs, never read from a file; takes precedence
}

// TLSConfig names the node's certificates and how they are managed.
type TLSConfig struct {
	Certs          []CertPair
	CA             string // file or directory of PEM CA certificates; may be empty
	VerifyClients  bool   // API clients' certificates must also chain to CA
	ReloadInterval time.Duration
	WarnBefore     time.Duration

	// MinVersion is the oldest TLS version the API listener accepts,
	// tls.VersionTLS12 (the default, with AEAD suites only) or
	// tls.VersionTLS13. The inter-node listener is TLS 1.3 only.
	MinVersion uint16
}

// CertPair is a certificate file and its private key file.
type CertPair struct {
	Cert string
	Key  string
}

// ClusterConfig identifies the node in its cluster and says how it forms
// or joins one. At most one of Bootstrap and BootstrapExpect is set;
// BootstrapExpect needs Join.
type ClusterConfig struct {
	NodeID    string // required; kept in the data directory, may not change
	Advertise string // the advertised API address; its host must be in the certificate's SANs
	Address   string // the inter-node listener (raft and the internal RPC), host:port

	// AdvertisePeer is the host:port that peers dial (default Address,
	// which then must not bind a wildcard host). With port 0 in Address
	// the node advertises the port it bound.
	AdvertisePeer string

	// Bootstrap forms a one-node cluster, once, on a node without state;
	// with Join it asks the Join peers first and joins if one is in a
	// cluster.
	Bootstrap bool

	// BootstrapExpect (1 to 9, 0 for none) forms a cluster of that many
	// nodes, found through Join, all bootstrapping the same configuration.
	BootstrapExpect int

	// Join lists the peer addresses (host:port) to join through, or to
	// exchange ids with for BootstrapExpect.
	Join []string

	// MaxStale is how long a follower without contact to a leader keeps
	// serving key operations (default DefaultMaxStale, at least 1s).
	MaxStale time.Duration

	Raft RaftConfig
}

// RaftConfig holds the raft timings and log settings of cluster.raft, as
// checked against raft's own constraints: every timeout at least 5ms,
// LeaderLeaseTimeout <= HeartbeatTimeout <= ElectionTimeout. They are
// meant for the raft.Config fields of the same names. A zero value in a
// Config built by a program stands for the default.
type RaftConfig struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64 // log entries between snapshots, at least 1
	TrailingLogs       uint64 // log entries kept after a snapshot, for followers to catch up from, at least 1
}

// LogConfig sets the log level and format ("text" or "json"), the size of
// the in-memory rings the log API reads, and the audit file.
type LogConfig struct {
	Level  slog.Level
	Format string

	// Buffer and BufferBytes bound each in-memory ring (all records, WARN
	// and above, the audit trail): at most Buffer records and about
	// BufferBytes bytes; 0 for journal.DefaultRecords and
	// journal.DefaultBytes.
	Buffer      int
	BufferBytes int

	// AuditFile, if set, is the file the audit trail is appended to, one
	// JSON object per line; it is reopened on SIGHUP (logrotate).
	AuditFile string
	// AuditRequired writes each audit record to AuditFile before the
	// response and refuses the request with 503 when it cannot; otherwise
	// records are written in the background and failures are counted
	// and logged.
	AuditRequired bool
}

// CacheConfig sizes the in-memory cache of decoded key rings, identities,
// enclaves and policies (kms.Options.CacheMaxEntries).
type CacheConfig struct {
	// MaxKeys bounds the cached entries of all kinds: 0 for
	// kms.DefaultCacheMaxEntries, negative to turn the cache off (cache.max_keys: 0).
	MaxKeys int
}

// maxCacheKeys bounds cache.max_keys.
const maxCacheKeys = 10_000_000

// cacheEntries returns the kms cache size of c.
func (c CacheConfig) cacheEntries() int {
	switch {
	case c.MaxKeys == 0:
		return kms.DefaultCacheMaxEntries
	case c.MaxKeys < 0:
		return 0
	}
	return c.MaxKeys
}

// LimitsConfig bounds the work of one request and the client API's
// connections.
type LimitsConfig struct {
	// RequestTimeout bounds a request's work; its body must arrive
	// within it (at most 30 s), and its answer be taken within it plus
	// 10 s (stall.go).
	RequestTimeout time.Duration

	// MaxConnections caps the open client API connections; 0 derives it
	// from the open-file limit (see DefaultMaxConnections), keeping
	// descriptors for raft, the internal RPC and the node's files.
	MaxConnections int

	// MaxConnectionsPerIP caps the open client API connections from one
	// remote address; 0 for no cap.
	MaxConnectionsPerIP int

	// UnauthenticatedIdleTimeout closes a client API connection that has
	// not made an authenticated request after it idled this long (default
	// DefaultUnauthenticatedIdleTimeout).
	UnauthenticatedIdleTimeout time.Duration
}

// DebugConfig turns on the diagnostics that are off by default.
type DebugConfig struct {
	// PProf serves Go's runtime profiles (net/http/pprof) at
	// GET /debug/pprof/* to cluster admins. A CPU profile
	// (/debug/pprof/profile?seconds=N) must end within the write timeout,
	// limits.request_timeout plus a few seconds.
	PProf bool
}

// ConfigError is an error in a config file: the file, the line, the setting
// (as a path such as tls.certs[0].cert) and what is wrong with it.
type ConfigError struct {
	File    string
	Line    int    // 0 if unknown
	Field   string // "" if the error is not about one setting
	Message string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// fileConfig is the YAML schema of the config file. Durations are strings
// here so that a bad one is reported with its line and setting.
type fileConfig struct {
	Version string `yaml:"version"`
	Address string `yaml:"address"`
	DataDir string `yaml:"data_dir"`
	RootKey *struct {
		Env  *string `yaml:"env"`
		File *string `yaml:"file"`
	} `yaml:"root_key"`
	Admins []string `yaml:"admins"`
	TLS    struct {
		Certs []struct {
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		} `yaml:"certs"`
		CA             string `yaml:"ca"`
		VerifyClients  bool   `yaml:"verify_clients"`
		ReloadInterval string `yaml:"reload_interval"`
		WarnBefore     string `yaml:"warn_before"`
		MinVersion     string `yaml:"min_version"`
	} `yaml:"tls"`
	Cluster struct {
		NodeID          string   `yaml:"node_id"`
		Advertise       string   `yaml:"advertise"`
		Address         string   `yaml:"address"`
		AdvertisePeer   string   `yaml:"advertise_peer"`
		Bootstrap       bool     `yaml:"bootstrap"`
		BootstrapExpect *int     `yaml:"bootstrap_expect"`
		Join            []string `yaml:"join"`
		MaxStale        string   `yaml:"max_stale"`
		Raft            struct {
			HeartbeatTimeout   string `yaml:"heartbeat_timeout"`
			ElectionTimeout    string `yaml:"election_timeout"`
			LeaderLeaseTimeout string `yaml:"leader_lease_timeout"`
			SnapshotInterval   string `yaml:"snapshot_interval"`
			SnapshotThreshold  *int64 `yaml:"snapshot_threshold"`
			TrailingLogs       *int64 `yaml:"trailing_logs"`
		} `yaml:"raft"`
	} `yaml:"cluster"`
	Log struct {
		Level         string `yaml:"level"`
		Format        string `yaml:"format"`
		Buffer        *int64 `yaml:"buffer"`
		BufferBytes   *int64 `yaml:"buffer_bytes"`
		AuditFile     string `yaml:"audit_file"`
		AuditRequired bool   `yaml:"audit_required"`
	} `yaml:"log"`
	Cache struct {
		MaxKeys *int64 `yaml:"max_keys"`
	} `yaml:"cache"`
	Limits struct {
		RequestTimeout             string `yaml:"request_timeout"`
		MaxConnections             *int64 `yaml:"max_connections"`
		MaxConnectionsPerIP        *int64 `yaml:"max_connections_per_ip"`
		UnauthenticatedIdleTimeout string `yaml:"unauthenticated_idle_timeout"`
	} `yaml:"limits"`
	Debug struct {
		PProf bool `yaml:"pprof"`
	} `yaml:"debug"`
}

// LoadConfig reads and validates the config file at path. Errors name the
// file and the line.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes and validates a config file's content; name is used
// in errors only. Unknown settings, a version other than v1, bad durations,
// a missing or ambiguous root key and other mistakes are reported as
// *ConfigError values (joined with errors.Join when there are several),
// each with the line of the setting.
func ParseConfig(name string, data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ConfigError{File: name, Message: "the file is empty"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ConfigError{File: name, Message: "the file is empty"}
		}
		return nil, yamlError(name, err)
	}
	v := &validator{file: name, root: documentRoot(&doc)}
	cfg := v.config(&fc)
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlLine matches the "line N: " that yaml errors start with.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml syntax or type error into ConfigErrors with lines.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, msg := range te.Errors {
			errs = append(errs, lineError(name, msg))
		}
		return errors.Join(errs...)
	}
	return lineError(name, err.Error())
}

func lineError(name, msg string) *ConfigError {
	msg = strings.TrimPrefix(strings.TrimSpace(msg), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		text := m[2]
		// "field foo not found in type server.fileConfig": say it plainly.
		if f, ok := strings.CutPrefix(text, "field "); ok {
			if i := strings.Index(f, " not found in type"); i >= 0 {
				text = fmt.Sprintf("unknown setting %q", f[:i])
			}
		}
		return &ConfigError{File: name, Line: line, Message: text}
	}
	return &ConfigError{File: name, Message: msg}
}

func documentRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

// validator checks a decoded file and collects every error with its line.
type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// line returns the line of the setting at path (keys are strings,
// sequence items ints): that of its key, or of the item; if it is absent,
// that of the nearest present ancestor.
func (v *validator) line(path ...any) int {
	n := v.root
	line := n.Line
	for _, p := range path {
		key, val := child(n, p)
		if val == nil {
			break
		}
		n, line = val, key.Line
	}
	return line
}

// child returns the key (or the item itself) and the value at p in n.
func child(n *yaml.Node, p any) (key, val *yaml.Node) {
	switch p := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				return n.Content[i], n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && p >= 0 && p < len(n.Content) {
			return n.Content[p], n.Content[p]
		}
	}
	return nil, nil
}

// fieldName renders a path as tls.certs[0].cert.
func fieldName(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		}
	}
	return b.String()
}

func (v *validator) errorf(path []any, format string, args ...any) {
	v.errs = append(v.errs, &ConfigError{
		File:    v.file,
		Line:    v.line(path...),
		Field:   fieldName(path),
		Message: fmt.Sprintf(format, args...),
	})
}

func (v *validator) has(path ...any) bool {
	n := v.root
	for _, p := range path {
		if _, n = child(n, p); n == nil {
			return false
		}
	}
	return true
}

// Lower bounds of durations that would otherwise make a node spin or fail
// every request: a reload every nanosecond re-reads the files without end.
const (
	minReloadInterval = time.Second
	minRequestTimeout = 100 * time.Millisecond

	minUnauthenticatedIdleTimeout = 100 * time.Millisecond
)

// duration parses the duration at path: def if s is empty, an error if it
// is not positive or below min (if min > 0).
func (v *validator) duration(s string, def, min time.Duration, path ...any) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.errorf(path, "invalid duration %q (use a number with a unit, such as 90s, 60m or 48h)", s)
		return def
	}
	if d <= 0 {
		v.errorf(path, "must be positive, not %s", s)
		return def
	}
	if d < min {
		v.errorf(path, "%s is too short: use at least %s", s, min)
		return def
	}
	return d
}

func (v *validator) hostPort(s string, path ...any) {
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		v.errorf(path, "invalid address %q: want host:port", s)
	}
}

func (v *validator) config(fc *fileConfig) *Config {
	cfg := &Config{}
	switch {
	case !v.has("version"):
		v.errorf([]any{"version"}, "missing: the first line of the file should be \"version: %s\"", ConfigVersion)
	case fc.Version != ConfigVersion:
		v.errorf([]any{"version"}, "unsupported version %q: this build reads %s", fc.Version, ConfigVersion)
	}

	cfg.Address = fc.Address
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	} else {
		v.hostPort(cfg.Address, "address")
	}

	cfg.DataDir = fc.DataDir
	if cfg.DataDir == "" {
		v.errorf([]any{"data_dir"}, "missing: name the directory that holds the node's state")
	}

	v.rootKey(fc, cfg)
	cfg.Debug.PProf = fc.Debug.PProf

	for i, s := range fc.Admins {
		id, err := kms.ParseIdentity(s)
		if err != nil {
			v.errorf([]any{"admins", i}, "not an identity (want h1:... or 64 hex digits): %v", err)
			continue
		}
		cfg.Admins = append(cfg.Admins, id)
	}

	v.tls(fc, cfg)
	v.cluster(fc, cfg)
	v.log(fc, cfg)
	v.limits(fc, cfg)
	if n := fc.Cache.MaxKeys; n != nil {
		if *n < 0 || *n > maxCacheKeys {
			v.errorf([]any{"cache", "max_keys"}, "must be between 0 (no cache) and %d, not %d", maxCacheKeys, *n)
		} else if cfg.Cache.MaxKeys = int(*n); *n == 0 {
			cfg.Cache.MaxKeys = -1
		}
	}
	return cfg
}

// maxConnectionsLimit bounds limits.max_connections and
// limits.max_connections_per_ip: no process has more file descriptors.
const maxConnectionsLimit = 1 << 24

func (v *validator) limits(fc *fileConfig, cfg *Config) {
	l := fc.Limits
	cfg.Limits.RequestTimeout = v.duration(l.RequestTimeout, DefaultRequestTimeout, minRequestTimeout, "limits", "request_timeout")
	cfg.Limits.MaxConnections = v.connections(l.MaxConnections, 1, "limits", "max_connections")
	cfg.Limits.MaxConnectionsPerIP = v.connections(l.MaxConnectionsPerIP, 0, "limits", "max_connections_per_ip")
	cfg.Limits.UnauthenticatedIdleTimeout = v.duration(l.UnauthenticatedIdleTimeout, DefaultUnauthenticatedIdleTimeout,
		minUnauthenticatedIdleTimeout, "limits", "unauthenticated_idle_timeout")
}

// connections parses a connection count at path: 0 if it is absent, an
// error if it is below min or above maxConnectionsLimit.
func (v *validator) connections(n *int64, min int64, path ...any) int {
	switch {
	case n == nil:
		return 0
	case *n < min || *n > maxConnectionsLimit:
		v.errorf(path, "must be between %d and %d, not %d", min, maxConnectionsLimit, *n)
		return 0
	}
	return int(*n)
}

func (v *validator) rootKey(fc *fileConfig, cfg *Config) {
	path := []any{"root_key"}
	switch {
	case fc.RootKey == nil:
		v.errorf(path, "missing: set root_key.env (an environment variable) or root_key.file")
	case fc.RootKey.Env != nil && fc.RootKey.File != nil:
		v.errorf(path, "set either env or file, not both")
	case fc.RootKey.Env != nil:
		cfg.RootKey.Env = *fc.RootKey.Env
		if cfg.RootKey.Env == "" {
			v.errorf([]any{"root_key", "env"}, "environment variable name must not be empty")
		}
	case fc.RootKey.File != nil:
		cfg.RootKey.File = *fc.RootKey.File
		if cfg.RootKey.File == "" {
			v.errorf([]any{"root_key", "file"}, "file name must not be empty")
		}
	default:
		v.errorf(path, "set env (an environment variable) or file")
	}
}

func (v *validator) tls(fc *fileConfig, cfg *Config) {
	t := &fc.TLS
	if len(t.Certs) == 0 {
		v.errorf([]any{"tls", "certs"}, "missing: at least one {cert, key} pair is needed")
	}
	for i, p := range t.Certs {
		if p.Cert == "" {
			v.errorf([]any{"tls", "certs", i, "cert"}, "file name must not be empty")
		}
		if p.Key == "" {
			v.errorf([]any{"tls", "certs", i, "key"}, "file name must not be empty")
		}
		cfg.TLS.Certs = append(cfg.TLS.Certs, CertPair{Cert: p.Cert, Key: p.Key})
	}
	cfg.TLS.CA = t.CA
	cfg.TLS.VerifyClients = t.VerifyClients
	if t.CA == "" {
		v.errorf([]any{"tls", "ca"}, "missing: the CA bundle (a file or directory) that node certificates and peers are verified against")
	}
	cfg.TLS.ReloadInterval = v.duration(t.ReloadInterval, DefaultReloadInterval, minReloadInterval, "tls", "reload_interval")
	cfg.TLS.WarnBefore = v.duration(t.WarnBefore, DefaultWarnBefore, 0, "tls", "warn_before")
	switch t.MinVersion {
	case "", "1.2":
		cfg.TLS.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.TLS.MinVersion = tls.VersionTLS13
	default:
		v.errorf([]any{"tls", "min_version"}, "unsupported TLS version %q: use 1.2 or 1.3", t.MinVersion)
	}
}

// nodeIDPattern is what raft and the status API accept as a node id.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Lower bounds of the cluster settings. Raft itself refuses timeouts and
// a snapshot interval below 5ms (raft.ValidateConfig).
const (
	minMaxStale    = time.Second
	minRaftTimeout = 5 * time.Millisecond
)

func (v *validator) cluster(fc *fileConfig, cfg *Config) {
	c := fc.Cluster
	cc := &cfg.Cluster
	cc.NodeID = c.NodeID
	cc.Advertise = c.Advertise
	if cc.Advertise == "" {
		cc.Advertise = cfg.Address
	}
	cc.Address = c.Address
	cc.AdvertisePeer = c.AdvertisePeer
	cc.Bootstrap = c.Bootstrap
	if c.BootstrapExpect != nil {
		cc.BootstrapExpect = *c.BootstrapExpect
		if cc.BootstrapExpect == 0 { // 0 is "none" only when it is not written down
			v.errorf([]any{"cluster", "bootstrap_expect"}, "%s", bootstrapExpectRange(0))
		}
	}
	cc.Join = c.Join
	cc.MaxStale = v.duration(c.MaxStale, 0, minMaxStale, "cluster", "max_stale")

	r := c.Raft
	raftErrs := len(v.errs)
	cc.Raft = RaftConfig{
		HeartbeatTimeout:   v.duration(r.HeartbeatTimeout, 0, minRaftTimeout, "cluster", "raft", "heartbeat_timeout"),
		ElectionTimeout:    v.duration(r.ElectionTimeout, 0, minRaftTimeout, "cluster", "raft", "election_timeout"),
		LeaderLeaseTimeout: v.duration(r.LeaderLeaseTimeout, 0, minRaftTimeout, "cluster", "raft", "leader_lease_timeout"),
		SnapshotInterval:   v.duration(r.SnapshotInterval, 0, minRaftTimeout, "cluster", "raft", "snapshot_interval"),
		SnapshotThreshold:  v.count(r.SnapshotThreshold, 1, "cluster", "raft", "snapshot_threshold"),
		TrailingLogs:       v.count(r.TrailingLogs, 1, "cluster", "raft", "trailing_logs"),
	}
	raftParsed := len(v.errs) == raftErrs

	cc.fill()
	for _, p := range cc.problems() {
		switch {
		case !raftParsed && p.path[0] == "raft":
			continue // compared with a default standing in for a bad value
		case c.Advertise == "" && p.path[0] == "advertise":
			continue // the API address, reported as such
		}
		v.errorf(append([]any{"cluster"}, p.path...), "%s", p.msg)
	}
}

// count parses a count at path: 0 (the default applies) if it is absent,
// an error if it is below min.
func (v *validator) count(n *int64, min int64, path ...any) uint64 {
	switch {
	case n == nil:
		return 0
	case *n < min:
		v.errorf(path, "must be at least %d, not %d", min, *n)
		return 0
	}
	return uint64(*n)
}

// fill sets the defaults of the cluster settings left zero. AdvertisePeer
// stays empty when Address binds a wildcard host: peers cannot dial that.
func (c *ClusterConfig) fill() {
	if c.Address == "" {
		c.Address = DefaultClusterAddress
	}
	if c.AdvertisePeer == "" && !wildcardHost(c.Address) {
		c.AdvertisePeer = c.Address
	}
	if c.MaxStale == 0 {
		c.MaxStale = DefaultMaxStale
	}
	r := &c.Raft
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&r.HeartbeatTimeout, DefaultHeartbeatTimeout},
		{&r.ElectionTimeout, DefaultElectionTimeout},
		{&r.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout},
		{&r.SnapshotInterval, DefaultSnapshotInterval},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if r.TrailingLogs == 0 {
		r.TrailingLogs = DefaultTrailingLogs
	}
}

// problem is a broken rule of the cluster settings: the setting, as a path
// below cluster, and what is wrong with it.
type problem struct {
	path []any
	msg  string
}

// problems checks filled cluster settings against the rules that files
// and programs share; ParseConfig adds the line of each.
func (c *ClusterConfig) problems() []problem {
	var ps []problem
	add := func(msg string, path ...any) { ps = append(ps, problem{path, msg}) }

	switch {
	case c.NodeID == "":
		add("missing: name this node (1 to 64 of A-Z a-z 0-9 _ . -); the id is kept in data_dir and may not change", "node_id")
	case !nodeIDPattern.MatchString(c.NodeID):
		add(fmt.Sprintf("invalid node id %q: use 1 to 64 of A-Z a-z 0-9 _ . -", c.NodeID), "node_id")
	}
	for _, a := range []struct{ name, addr string }{{"advertise", c.Advertise}, {"address", c.Address}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			add(fmt.Sprintf("invalid address %q: want host:port", a.addr), a.name)
		}
	}
	switch {
	case c.AdvertisePeer == "":
		add(fmt.Sprintf("missing: cluster.address %s binds every interface, so name the host:port that the other nodes dial, such as kms-1.example.net:7374", c.Address), "advertise_peer")
	case c.AdvertisePeer != c.Address || wildcardHost(c.AdvertisePeer):
		if err := dialable(c.AdvertisePeer); err != nil {
			add(err.Error(), "advertise_peer")
		}
	}

	switch {
	case c.Bootstrap && c.BootstrapExpect != 0:
		add("set either bootstrap (a one-node cluster) or bootstrap_expect (a cluster of that many nodes found through join), not both", "bootstrap_expect")
	case c.BootstrapExpect < 0 || c.BootstrapExpect > MaxBootstrapExpect:
		add(bootstrapExpectRange(c.BootstrapExpect), "bootstrap_expect")
	case c.BootstrapExpect > 0 && len(c.Join) == 0:
		add("needs join: the peer addresses (host:port) of the other nodes to form the cluster with", "bootstrap_expect")
	}
	seen := make(map[string]int)
	for i, addr := range c.Join {
		if err := dialable(addr); err != nil {
			add(err.Error(), "join", i)
			continue
		}
		host, port, _ := net.SplitHostPort(addr)
		key := net.JoinHostPort(strings.ToLower(host), port)
		if first, ok := seen[key]; ok {
			add(fmt.Sprintf("%s is listed twice: see join[%d]", addr, first), "join", i)
			continue
		}
		seen[key] = i
	}

	if c.MaxStale < minMaxStale {
		add(fmt.Sprintf("%s is too short: use at least %s", c.MaxStale, minMaxStale), "max_stale")
	}
	return append(ps, c.Raft.problems()...)
}

// problems checks the raft settings against raft's own constraints
// (raft.ValidateConfig), which would otherwise stop the node at start.
func (r RaftConfig) problems() []problem {
	var ps []problem
	add := func(msg, field string) { ps = append(ps, problem{[]any{"raft", field}, msg}) }
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"heartbeat_timeout", r.HeartbeatTimeout},
		{"election_timeout", r.ElectionTimeout},
		{"leader_lease_timeout", r.LeaderLeaseTimeout},
		{"snapshot_interval", r.SnapshotInterval},
	} {
		if d.v < minRaftTimeout {
			add(fmt.Sprintf("%s is too short: raft needs at least %s", d.v, minRaftTimeout), d.field)
		}
	}
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		add(fmt.Sprintf("%s is longer than heartbeat_timeout (%s): raft needs leader_lease_timeout <= heartbeat_timeout",
			r.LeaderLeaseTimeout, r.HeartbeatTimeout), "leader_lease_timeout")
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		add(fmt.Sprintf("%s is shorter than heartbeat_timeout (%s): raft needs election_timeout >= heartbeat_timeout",
			r.ElectionTimeout, r.HeartbeatTimeout), "election_timeout")
	}
	if r.SnapshotThreshold < 1 {
		add("must be at least 1", "snapshot_threshold")
	}
	return ps
}

func bootstrapExpectRange(n int) string {
	return fmt.Sprintf("must be between 1 and %d, not %d", MaxBootstrapExpect, n)
}

// wildcardHost reports whether addr binds every interface (0.0.0.0, ::
// or no host at all). An address that does not parse is not one.
func wildcardHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// dialable checks that addr is an address another node can dial: a host
// that is not a wildcard and a port from 1 to 65535.
func dialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("invalid address %q: want host:port", addr)
	}
	if wildcardHost(addr) {
		return fmt.Errorf("%q names no host that can be dialed: use the host name or IP address of the node", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port in %q: want a number from 1 to 65535", addr)
	}
	return nil
}

func (v *validator) log(fc *fileConfig, cfg *Config) {
	switch strings.ToLower(fc.Log.Level) {
	case "", "info":
		cfg.Log.Level = slog.LevelInfo
	case "debug":
		cfg.Log.Level = slog.LevelDebug
	case "warn", "warning":
		cfg.Log.Level = slog.LevelWarn
	case "error":
		cfg.Log.Level = slog.LevelError
	default:
		v.errorf([]any{"log", "level"}, "unknown level %q: use debug, info, warn or error", fc.Log.Level)
	}
	switch fc.Log.Format {
	case "", "text":
		cfg.Log.Format = "text"
	case "json":
		cfg.Log.Format = "json"
	default:
		v.errorf([]any{"log", "format"}, "unknown format %q: use text or json", fc.Log.Format)
	}
	cfg.Log.Buffer = v.bounded(fc.Log.Buffer, minLogBuffer, maxLogBuffer, "log", "buffer")
	cfg.Log.BufferBytes = v.bounded(fc.Log.BufferBytes, minLogBufferBytes, maxLogBufferBytes, "log", "buffer_bytes")
	cfg.Log.AuditFile = fc.Log.AuditFile
	cfg.Log.AuditRequired = fc.Log.AuditRequired
	if cfg.Log.AuditRequired && cfg.Log.AuditFile == "" {
		v.errorf([]any{"log", "audit_required"}, "needs log.audit_file: name the file the audit trail must be written to")
	}
}

// Bounds of log.buffer (records) and log.buffer_bytes.
const (
	minLogBuffer      = 100
	maxLogBuffer      = 10_000_000
	minLogBufferBytes = 64 << 10
	maxLogBufferBytes = 4 << 30
)

// bounded parses a count at path: 0 if it is absent, an error if it is
// outside [min, max].
func (v *validator) bounded(n *int64, min, max int64, path ...any) int {
	switch {
	case n == nil:
		return 0
	case *n < min || *n > max:
		v.errorf(path, "must be between %d and %d, not %d", min, max, *n)
		return 0
	}
	return int(*n)
}

// check validates a config that a program built rather than ParseConfig,
// and fills in defaults for what it left zero.
func (c *Config) check() error {
	if c.DataDir == "" {
		return errors.New("server: config: no data directory")
	}
	if len(c.TLS.Certs) == 0 {
		return errors.New("server: config: no TLS certificate")
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Cluster.Advertise == "" {
		c.Cluster.Advertise = c.Address
	}
	c.Cluster.fill()
	if c.TLS.ReloadInterval <= 0 {
		c.TLS.ReloadInterval = DefaultReloadInterval
	}
	if c.TLS.WarnBefore <= 0 {
		c.TLS.WarnBefore = DefaultWarnBefore
	}
	if c.Limits.RequestTimeout <= 0 {
		c.Limits.RequestTimeout = DefaultRequestTimeout
	}
	if c.Limits.UnauthenticatedIdleTimeout <= 0 {
		c.Limits.UnauthenticatedIdleTimeout = DefaultUnauthenticatedIdleTimeout
	}
	var errs []error
	if c.Limits.MaxConnections < 0 || c.Limits.MaxConnectionsPerIP < 0 {
		errs = append(errs, errors.New("server: config: limits: max_connections and max_connections_per_ip must not be negative"))
	}
	switch c.TLS.MinVersion {
	case 0:
		c.TLS.MinVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		errs = append(errs, fmt.Errorf("server: config: tls.min_version: unsupported TLS version %#04x: use 1.2 or 1.3", c.TLS.MinVersion))
	}
	for _, p := range c.Cluster.problems() {
		errs = append(errs, fmt.Errorf("server: config: %s: %s", fieldName(append([]any{"cluster"}, p.path...)), p.msg))
	}
	return errors.Join(errs...)
}

// TLSManagerConfig returns what the node's certificate manager is built
// from: the pairs, the CA bundle, the reload and warning settings, and the
// hosts every pair must name, those of cluster.advertise and
// cluster.advertise_peer (none for a wildcard address). The node and
// `minkms cert check --config` both take it from here, so the check looks
// at what the node loads.
// Logger and Clock are left to the caller.
func (c *Config) TLSManagerConfig() tlsmgr.Config {
	return tlsmgr.Config{
		Certs:          tlsPairs(c.TLS.Certs),
		CA:             c.TLS.CA,
		Host:           advertisedHost(c.Cluster.Advertise),
		PeerHost:       advertisedHost(c.Cluster.AdvertisePeer),
		VerifyClients:  c.TLS.VerifyClients,
		ReloadInterval: c.TLS.ReloadInterval,
		WarnBefore:     c.TLS.WarnBefore,
		MinVersion:     c.TLS.MinVersion,
	}
}

// load returns the root key from where the config says. The caller clears
// the returned slice when done. Errors never contain the key.
func (c RootKeyConfig) load() ([]byte, error) {
	switch {
	case c.Key != "":
		return ParseRootKey(c.Key)
	case c.Env != "":
		s, ok := os.LookupEnv(c.Env)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("the environment variable %s is not set", c.Env)
		}
		key, err := ParseRootKey(s)
		if err != nil {
			return nil, fmt.Errorf("the environment variable %s: %w", c.Env, err)
		}
		return key, nil
	case c.File != "":
		data, err := os.ReadFile(c.File)
		if err != nil {
			return nil, fmt.Errorf("reading the root key file: %w", err)
		}
		defer clear(data)
		key, err := ParseRootKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("the root key file %s: %w", c.File, err)
		}
		return key, nil
	}
	return nil, errors.New("none configured: set root_key.env or root_key.file")
}
