package main

// The commands in this file need the server package; the rest of the CLI
// needs only the client SDK.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/minkms/minkms/server"
)

func init() {
	extraCommands = append(extraCommands, (*cli).serverCommand, (*cli).rootKeyCommand, (*cli).versionCommand)
}

func (c *cli) serverCommand() *cobra.Command {
	var (
		configFile string
		dev        bool
		address    string
		logLevel   string
		logFormat  string
		nodes      int
		basePort   int
		devOpts    devOptions
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a minkms node",
		Long: `Run a minkms node as its YAML config file describes, until SIGINT or
SIGTERM; SIGHUP reloads its TLS certificates.

With --dev it runs a throw-away development node instead: a generated CA and
certificate, a root key in memory only, and a new admin API key, all printed
at start, and a temporary data directory removed at exit. The directory of a
dev node killed before it could remove its own (SIGKILL) is removed at the
next --dev start; those of running dev nodes are never touched.

With --dev --nodes 3 (or 5) it runs a local development cluster instead:
that many real nodes, each a "minkms server --config" child process on
127.0.0.1 (API ports 7373, 7383, 7393, ..., peer ports 7374, 7384, 7394,
...), with a generated CA and one certificate per node, a shared root key
and an admin API key, in a temporary directory. Their log lines go to
standard error, prefixed with the node id. A node that exits is reported
and the others keep running; Ctrl-C or SIGTERM stops every node (SIGKILL
after 20s) and removes the directory.

--base-port N moves the development ports: node i (1, 2, 3, ...) gets the
API port N+10*(i-1) and the peer port one above it, so --base-port 8000
gives 8000/8001, 8010/8011 and 8020/8021. With a single development node
it sets that node's API port (127.0.0.1:N; a node alone takes a free peer port).`,
		Example: `  minkms server --config /etc/minkms/config.yaml
  minkms server --dev --address 127.0.0.1:7373
  minkms server --dev --json > dev.json
  minkms server --dev --nodes 3
  minkms server --dev --nodes 3 --base-port 8000 --json > cluster.json`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "the node's YAML config file")
	f.BoolVar(&dev, "dev", false, "run a throw-away development node")
	f.StringVar(&address, "address", "", "with --dev: the listen address (default 127.0.0.1:7373)")
	f.IntVar(&nodes, "nodes", 1, "with --dev: the number of nodes, 1, 3 or 5 (more than 1: a local cluster)")
	f.IntVar(&basePort, "base-port", devBasePort, "with --dev: node i's API port is `N`+10*(i-1), its peer port one above")
	f.BoolVar(&devOpts.Bench, "bench-setup", false, "with --dev --nodes: each node writes its audit trail to a file and serves /debug/pprof (make bench)")
	_ = f.MarkHidden("bench-setup")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (overrides the config file)")
	f.StringVar(&logFormat, "log-format", "", "text or json (overrides the config file)")
	cmd.MarkFlagsMutuallyExclusive("config", "dev")
	cmd.MarkFlagsOneRequired("config", "dev")
	out := jsonFlag(cmd)
	cmd.Flags().Lookup("json").Usage = "with --dev: print the URLs, API key and CA file as one JSON document"

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		// Before anything is created: everything under data_dir (and the
		// dev directories) is 0700/0600, whatever modes its creator asks for.
		privateUmask()
		if address != "" && !dev {
			return errors.New("--address needs --dev; a node's address is in its config file")
		}
		if out.json && !dev {
			return errors.New("--json needs --dev; a node started with --config prints only its log")
		}
		if cmd.Flags().Changed("nodes") {
			if err := checkDevNodes(dev, nodes, address); err != nil {
				return err
			}
		}
		if cmd.Flags().Changed("base-port") {
			if err := checkDevBasePort(dev, nodes, basePort, address); err != nil {
				return err
			}
			if nodes == 1 {
				address = net.JoinHostPort("127.0.0.1", strconv.Itoa(basePort))
			}
		}
		if dev && nodes > 1 {
			return c.runDevCluster(cmd.Context(), nodes, basePort, devOpts, out, devLogFlags(logLevel, logFormat))
		}
		var (
			cfg  *server.Config
			info server.DevInfo
			err  error
		)
		if dev {
			cfg, info, err = server.DevConfig(address)
			if info.DataDir != "" {
				defer info.Remove()
			}
		} else {
			cfg, err = server.LoadConfig(configFile)
			if cfg != nil {
				cfg.CheckStateFile = checkStateFileInChild
			}
		}
		if err != nil {
			return err
		}
		if err := applyLogFlags(&cfg.Log, logLevel, logFormat); err != nil {
			return err
		}
		logger := server.NewLogger(c.stderr, cfg.Log)
		srv, err := server.New(cmd.Context(), cfg, logger)
		if err != nil {
			return err
		}
		if dev {
			if addr := srv.Addr(); addr != "" {
				info.URL = "https://" + addr
			}
			if err := c.printDevInfo(out, info); err != nil {
				return err
			}
		}
		return srv.Run(cmd.Context())
	}
	return cmd
}

// applyLogFlags sets the log level and format from the flags, where given.
func applyLogFlags(lc *server.LogConfig, level, format string) error {
	if level != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(level)); err != nil {
			return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
		}
		lc.Level = l
	}
	switch format {
	case "":
	case "text", "json":
		lc.Format = format
	default:
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

// devInfoJSON is what server --dev --json prints.
type devInfoJSON struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
	CAFile string `json:"ca_file"`
}

func (c *cli) printDevInfo(out *output, info server.DevInfo) error {
	if out.json {
		return writeJSON(c.stdout, devInfoJSON{URL: info.URL, APIKey: info.APIKey, CAFile: info.CAFile})
	}
	s := styleFor(c.stdout)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", s.bold("minkms development node"))
	fmt.Fprintf(&b, "  URL:      %s\n", info.URL)
	fmt.Fprintf(&b, "  API key:  %s  (cluster admin)\n", info.APIKey)
	fmt.Fprintf(&b, "  CA file:  %s\n\n", info.CAFile)
	fmt.Fprintf(&b, "Its state is temporary and gone when it stops. To use it from another shell:\n\n")
	fmt.Fprintf(&b, "  export %s=%s %s=%s %s=%s\n\n", envServer, info.URL, envAPIKey, info.APIKey, envCACert, info.CAFile)
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}

func (c *cli) rootKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root-key",
		Short: "Create cluster root keys",
		Long: `The root key seals everything a cluster stores. All nodes of a cluster share
it; keep it secret and do not lose it: without it, the state cannot be read.`,
		Example: `  minkms root-key new > /etc/minkms/root.key`,
	}
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Print a new random root key",
		Long: `Print a new random cluster root key, "r1:" followed by 32 random bytes in
base64url. Give it to every node of a new cluster (root_key.file or
root_key.env in the config file).`,
		Example: `  minkms root-key new > /etc/minkms/root.key && chmod 600 /etc/minkms/root.key`,
		Args:    cobra.NoArgs,
	}
	out := jsonFlag(newCmd)
	newCmd.RunE = func(cmd *cobra.Command, args []string) error {
		key := server.GenerateRootKey()
		if out.json {
			return writeJSON(c.stdout, map[string]string{"root_key": key})
		}
		_, err := fmt.Fprintln(c.stdout, key)
		return err
	}
	cmd.AddCommand(newCmd)
	return cmd
}

func (c *cli) versionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of minkms",
		Long:    `Print the version of this minkms binary.`,
		Example: `  minkms version`,
		Args:    cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if out.json {
			return writeJSON(c.stdout, map[string]string{"version": server.Version})
		}
		_, err := fmt.Fprintf(c.stdout, "minkms %s\n", server.Version)
		return err
	}
	return cmd
}
