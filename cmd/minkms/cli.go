package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0 // success
	exitLocal   = 1 // a local error: bad flag, unreadable file, no connection
	exitRefused = 2 // the server answered with an error (*api.Error)
)

// Environment variables that stand in for the global flags.
const (
	envServer  = "MINKMS_SERVER"
	envAPIKey  = "MINKMS_API_KEY"
	envCACert  = "MINKMS_CACERT"
	envEnclave = "MINKMS_ENCLAVE"
)

// cli is one run of the command line: its streams and global flags.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	servers  []string
	apiKey   string
	caCert   string
	insecure bool
}

// extraCommands add commands that need more than the client SDK (the
// server package); they live in their own files.
var extraCommands []func(*cli) *cobra.Command

// run runs the command line args and returns the exit code: 0 on success,
// 1 for a local error and 2 when the server refused the request.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdin, stdout, stderr)
}

// runContext is run, ended when ctx is (as by Ctrl-C).
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		// The command chose its exit code (cluster status --check).
		if e.err != nil {
			fmt.Fprintf(stderr, "%s %s\n", styleFor(stderr).red("minkms:"), e.err)
		}
		return e.code
	}
	fmt.Fprintf(stderr, "%s %s\n", styleFor(stderr).red("minkms:"), err)
	if _, ok := errors.AsType[*api.Error](err); ok {
		return exitRefused
	}
	return exitLocal
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "minkms",
		Short: "minkms is a clustered key manager",
		Long: `minkms is a clustered key manager. Three or five nodes hold the same
replicated, encrypted key store; applications ask any node over HTTPS with
mutual TLS to create keys, generate data keys, and encrypt, decrypt and MAC
small values.

The client commands talk to the servers named by --server (or MINKMS_SERVER,
a comma-separated list tried in order) as the identity of --api-key (or
MINKMS_API_KEY), verifying the servers with --cacert (or MINKMS_CACERT).

Exit codes: 0 success, 1 local error (bad flag, unreadable file, no
connection), 2 the server refused the request.`,
		Example: `  minkms server --dev
  export MINKMS_SERVER=https://127.0.0.1:7373 MINKMS_API_KEY=k1:... MINKMS_CACERT=ca.crt
  minkms key create my-key
  minkms key encrypt my-key 'hello world'`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	f := root.PersistentFlags()
	f.StringSliceVarP(&c.servers, "server", "s", nil, "server endpoints, comma-separated (env "+envServer+")")
	f.StringVar(&c.apiKey, "api-key", "", "API key of the client identity (env "+envAPIKey+")")
	f.StringVar(&c.caCert, "cacert", "", "PEM file of the CA certificates that verify the servers (env "+envCACert+")")
	f.BoolVarP(&c.insecure, "insecure", "k", false, "accept any server certificate (development only)")

	root.AddCommand(
		c.keyCommand(),
		c.enclaveCommand(),
		c.identityCommand(),
		c.policyCommand(),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(c))
	}
	explainArgErrors(root)
	return root
}

// explainArgErrors makes a wrong number of arguments answer with the usage
// line of the command rather than cobra's "accepts 1 arg(s)".
func explainArgErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return fmt.Errorf("usage: %s (see '%s --help')", cmd.UseLine(), cmd.CommandPath())
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		explainArgErrors(sub)
	}
}

// env returns the value of the environment variable name, or "" if it is
// unset.
func env(name string) string { return strings.TrimSpace(os.Getenv(name)) }

// client returns an SDK client for the global flags, with the environment
// filling in what the flags leave out.
func (c *cli) client(cmd *cobra.Command) (*api.Client, error) {
	servers := c.servers
	if !cmd.Flags().Changed("server") {
		servers = splitList(env(envServer))
	}
	if len(servers) == 0 {
		return nil, errors.New("no server: set --server or " + envServer)
	}
	keyText := c.apiKey
	if !cmd.Flags().Changed("api-key") {
		keyText = env(envAPIKey)
	}
	if keyText == "" {
		return nil, errors.New("no API key: set --api-key or " + envAPIKey + " (minkms identity new creates one)")
	}
	key, err := api.ParseAPIKey(keyText)
	if err != nil {
		return nil, err
	}
	return c.clientAs(cmd, servers, key)
}

// anonClient returns an SDK client without a client certificate, for the
// routes that need none (/version).
func (c *cli) anonClient(cmd *cobra.Command) (*api.Client, error) {
	servers := c.servers
	if !cmd.Flags().Changed("server") {
		servers = splitList(env(envServer))
	}
	if len(servers) == 0 {
		return nil, errors.New("no server: set --server or " + envServer)
	}
	return c.clientAs(cmd, servers, nil)
}

// clientAs returns an SDK client for servers as key (none if nil).
func (c *cli) clientAs(cmd *cobra.Command, servers []string, key *api.APIKey) (*api.Client, error) {
	cfg := api.Config{Endpoints: servers, APIKey: key, InsecureSkipVerify: c.insecure}
	caFile := c.caCert
	if !cmd.Flags().Changed("cacert") {
		caFile = env(envCACert)
	}
	if caFile != "" {
		pool, err := loadCertPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return api.NewClient(cfg)
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func loadCertPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("read CA certificates: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// enclaveFlag adds --enclave to cmd and its subcommands and returns a
// function that yields the enclave to act in: the flag, else
// MINKMS_ENCLAVE, else "default".
func enclaveFlag(cmd *cobra.Command) func(*cobra.Command) string {
	var name string
	cmd.PersistentFlags().StringVarP(&name, "enclave", "e", "", "enclave to act in (env "+envEnclave+`, default "default")`)
	return func(cmd *cobra.Command) string {
		if cmd.Flags().Changed("enclave") {
			return name
		}
		if e := env(envEnclave); e != "" {
			return e
		}
		return "default"
	}
}

// listAll follows a listing's continuation marks and returns every name.
func listAll(ctx context.Context, page func(ctx context.Context, continueAt string) (*api.ListResponse, error)) ([]string, error) {
	names := []string{}
	continueAt := ""
	for {
		resp, err := page(ctx, continueAt)
		if err != nil {
			return nil, err
		}
		names = append(names, resp.Names...)
		if resp.ContinueAt == "" {
			return names, nil
		}
		if resp.ContinueAt == continueAt {
			return nil, fmt.Errorf("the server repeated the continuation mark %q", continueAt)
		}
		continueAt = resp.ContinueAt
	}
}
