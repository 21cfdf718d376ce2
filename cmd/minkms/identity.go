package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func (c *cli) identityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Create API keys and manage the identities of an enclave",
		Long: `An identity is the hash of a client certificate's public key, "h1:...".
An API key ("k1:...") is a private key from which the client derives its
certificate, so an application needs no PKI of its own.

"new" and "of" work locally; the other commands act in the enclave named by
--enclave (or MINKMS_ENCLAVE, "default" if neither is set).`,
		Example: `  minkms identity new
  minkms identity add h1:... --policy app-read`,
	}
	enclave := enclaveFlag(cmd)
	cmd.AddCommand(
		c.identityNew(),
		c.identityOf(),
		c.listCommand(listing{
			short:   "List the identities of an enclave",
			long:    `List the identities of an enclave, all or those that start with PREFIX.`,
			example: "  minkms identity ls --enclave tenant-1",
			source:  c.inEnclave(enclave, (*api.Enclave).ListIdentities),
		}),
		c.identityAdd(enclave),
		c.identityStat(enclave),
		c.identityRemove(enclave),
		c.identitySelf(),
	)
	return cmd
}

func (c *cli) identityNew() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Generate a new API key",
		Long: `Generate a new API key locally and print it with its identity. Keep the
API key secret; give the identity to an admin, who lets it in with
"minkms identity add".`,
		Example: `  minkms identity new`,
		Args:    cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		key, err := api.GenerateAPIKey()
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, map[string]string{"api_key": key.String(), "identity": key.Identity()})
		}
		t := newTable(c.stdout)
		t.row("API key:", key.String())
		t.row("Identity:", key.Identity())
		return t.flush()
	}
	return cmd
}

func (c *cli) identityOf() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "of CERT_FILE",
		Short:   "Print the identity of a certificate",
		Long:    `Print the identity of the first certificate in a PEM file.`,
		Example: `  minkms identity of client.crt`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cert, err := readCertificate(args[0])
		if err != nil {
			return err
		}
		id := api.IdentityOf(cert)
		if out.json {
			return writeJSON(c.stdout, map[string]string{"identity": id})
		}
		_, err = fmt.Fprintln(c.stdout, id)
		return err
	}
	return cmd
}

// readCertificate returns the first certificate of a PEM file.
func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("read certificate: %s holds no PEM certificate", path)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read certificate %s: %w", path, err)
		}
		return cert, nil
	}
}

func (c *cli) printIdentity(out *output, info *api.IdentityInfo) error {
	if out.json {
		return writeJSON(c.stdout, info)
	}
	role := "user"
	switch {
	case info.ClusterAdmin:
		role = "cluster admin"
	case info.Admin:
		role = "admin"
	}
	t := newTable(c.stdout)
	t.row("Identity:", info.Identity)
	t.row("Enclave:", info.Enclave)
	t.row("Role:", role)
	t.row("Policy:", orDash(info.Policy))
	t.row("Created:", createdBy(info.CreatedAt, info.CreatedBy))
	return t.flush()
}

func (c *cli) identityAdd(enclave enclaveOf) *cobra.Command {
	var req api.CreateIdentityRequest
	cmd := &cobra.Command{
		Use:   "add IDENTITY",
		Short: "Let an identity into an enclave",
		Long: `Let an identity into an enclave, either as an admin of the enclave (--admin)
or with a policy (--policy) that says what it may do.`,
		Example: `  minkms identity add h1:... --policy app-read
  minkms identity add h1:... --admin --enclave tenant-1`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&req.Admin, "admin", false, "make the identity an admin of the enclave")
	cmd.Flags().StringVar(&req.Policy, "policy", "", "the policy of the identity")
	cmd.MarkFlagsMutuallyExclusive("admin", "policy")
	cmd.MarkFlagsOneRequired("admin", "policy")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.CreateIdentity(cmd.Context(), args[0], &req)
		if err != nil {
			return err
		}
		return c.printIdentity(out, info)
	}
	return cmd
}

func (c *cli) identityStat(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stat IDENTITY",
		Aliases: []string{"describe"},
		Short:   "Show an identity of an enclave",
		Long:    `Show an identity of an enclave: its role, policy and creation.`,
		Example: `  minkms identity stat h1:...`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.DescribeIdentity(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return c.printIdentity(out, info)
	}
	return cmd
}

func (c *cli) identityRemove(enclave enclaveOf) *cobra.Command {
	return &cobra.Command{
		Use:     "rm IDENTITY",
		Aliases: []string{"delete"},
		Short:   "Remove an identity from an enclave",
		Long:    `Remove an identity from an enclave; its requests are refused from then on.`,
		Example: `  minkms identity rm h1:...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.enclave(cmd, enclave)
			if err != nil {
				return err
			}
			if err := e.DeleteIdentity(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Removed identity %s\n", args[0])
			return err
		},
	}
}

func (c *cli) identitySelf() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "self",
		Short: "Show the identity of the API key in use",
		Long: `Show the identity of the API key in use as the server knows it: its
enclave, role and policy rules.`,
		Example: `  minkms identity self --json`,
		Args:    cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		self, err := client.DescribeSelf(cmd.Context())
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, self)
		}
		if err := c.printIdentity(out, &self.IdentityInfo); err != nil {
			return err
		}
		if self.PolicyRules == nil {
			return nil
		}
		fmt.Fprintln(c.stdout)
		return c.printRules(self.PolicyRules)
	}
	return cmd
}
