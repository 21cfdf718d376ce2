package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/internal/devdir"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/tlsmgr"
)

// devCertValidity is how long the certificates of a development node last.
const devCertValidity = 30 * 24 * time.Hour

// DevInfo is what a client needs to talk to a development node.
type DevInfo struct {
	URL     string // https://127.0.0.1:7373 (with port 0, use Server.Addr once started)
	APIKey  string // the admin API key, "k1:..."
	CAFile  string // the CA certificate that signed the node's certificate
	DataDir string // the temporary directory of the node; the caller removes it (Remove)

	dir *devdir.Dir
}

// Remove removes the temporary directory of the node and gives up its
// ownership. A directory whose owner died without removing it (SIGKILL)
// is removed by the next DevConfig, of any process.
func (i DevInfo) Remove() error {
	if i.dir == nil {
		return os.RemoveAll(i.DataDir)
	}
	return i.dir.Remove()
}

// DevConfig returns the configuration of a throw-away development node
// listening on address (DefaultAddress if empty; port 0 picks a free one):
// a fresh temporary directory (os.MkdirTemp) holding the state and a
// generated CA and node certificate for 127.0.0.1 and localhost, a random
// root key that is kept in memory only, and a new API key whose identity
// is the node's cluster admin. The node, "dev", bootstraps a cluster of its
// own; its inter-node address is on the same loopback host, one port above
// the API's (a free one with port 0). The caller removes the directory when
// done (DevInfo.Remove); directories of dev nodes that were killed before
// they could are removed here, those of running ones never (see devdir).
func DevConfig(address string) (*Config, DevInfo, error) {
	if address == "" {
		address = DefaultAddress
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, DevInfo{}, fmt.Errorf("dev address %q: %w", address, err)
	}
	dir, err := devdir.Create(devdir.Prefix)
	if err != nil {
		return nil, DevInfo{}, fmt.Errorf("creating the dev directory: %w", err)
	}
	cfg, info, err := devConfig(dir.Path, address, host)
	if err != nil {
		dir.Remove()
		return nil, DevInfo{}, err
	}
	info.dir = dir
	return cfg, info, nil
}

func devConfig(dir, address, host string) (*Config, DevInfo, error) {
	peer, err := devPeerAddress(address)
	if err != nil {
		return nil, DevInfo{}, err
	}
	hosts := []string{"127.0.0.1", "localhost"}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		hosts = append(hosts, host)
	}
	pki, err := tlsmgr.WriteDevPKI(filepath.Join(dir, "certs"), hosts, devCertValidity)
	if err != nil {
		return nil, DevInfo{}, fmt.Errorf("writing the dev certificates: %w", err)
	}
	admin, err := api.GenerateAPIKey()
	if err != nil {
		return nil, DevInfo{}, fmt.Errorf("generating the admin API key: %w", err)
	}
	adminID, err := kms.ParseIdentity(admin.Identity())
	if err != nil {
		return nil, DevInfo{}, fmt.Errorf("the admin API key's identity: %w", err)
	}
	cfg := &Config{
		Address: address,
		DataDir: filepath.Join(dir, "data"),
		RootKey: RootKeyConfig{Key: GenerateRootKey()},
		Admins:  []kms.Identity{adminID},
		TLS: TLSConfig{
			Certs:          []CertPair{{Cert: pki.Cert, Key: pki.Key}},
			CA:             pki.CACert,
			ReloadInterval: DefaultReloadInterval,
			WarnBefore:     DefaultWarnBefore,
		},
		Cluster: ClusterConfig{
			NodeID:        "dev",
			Advertise:     address,
			Address:       peer,
			AdvertisePeer: peer,
			Bootstrap:     true,
		},
		Log:    LogConfig{Level: slog.LevelInfo, Format: "text"},
		Limits: LimitsConfig{RequestTimeout: DefaultRequestTimeout},
	}
	cfg.Cluster.fill()
	info := DevInfo{
		URL:     "https://" + address,
		APIKey:  admin.String(),
		CAFile:  pki.CACert,
		DataDir: dir,
	}
	return cfg, info, nil
}

// devPeerAddress is the inter-node address of a single development node:
// on the loopback host its certificate names, at a free port. A node alone
// has no peers to dial it, and a fixed port (the API's plus one) collided
// with whatever else held it, such as another dev node or test; the
// clusters of `--dev --nodes N` have fixed ports of their own.
func devPeerAddress(api string) (string, error) {
	host, port, err := net.SplitHostPort(api)
	if err != nil {
		return "", fmt.Errorf("dev address %q: %w", api, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("dev address %q: invalid port", api)
	}
	if host == "" || wildcardHost(api) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, "0"), nil
}
