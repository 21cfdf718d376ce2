package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func (c *cli) identityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Create API keys and manage the identities of an enclave",
		Long: `An identity is the hash of a client certificate's public key, "h1:...".
KES's form of the same hash, 64 hex digits, is accepted wherever an
identity is and becomes its "h1:" form.
An API key ("k1:...") is a private key from which the client derives its
certificate, so an application needs no PKI of its own.

"of" works locally, and so does "new" unless it also lets the new key in;
the other commands act in the enclave named by --enclave (or
MINKMS_ENCLAVE, "default" if neither is set).

Letting an identity in. A cluster admin may add any identity. An enclave
admin may add one only with the consent of its key holder, a proof:

  1. The admin asks the key holder for a proof for the enclave.
  2. The key holder runs "minkms identity proof --enclave E" with its API key
     (or its certificate and private key) and hands over the printed token,
     valid for an hour by default.
  3. The admin runs "minkms identity add ID --proof TOKEN".

"minkms identity new --admin|--policy P" makes a new key and adds it with a
proof of its own in one step. An identity that belongs to another enclave
is refused like a missing proof: an enclave admin learns nothing about the
identities of other enclaves.`,
		Example: `  minkms identity new
  minkms identity new --policy app-read --enclave tenant-1
  minkms identity proof --enclave tenant-1 --api-key k1:...     (the key holder)
  minkms identity add h1:... --policy app-read --proof p1:...   (the admin)`,
	}
	enclave := enclaveFlag(cmd)
	cmd.AddCommand(
		c.identityNew(enclave),
		c.identityProof(enclave),
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

func (c *cli) identityNew(enclave enclaveOf) *cobra.Command {
	var req api.CreateIdentityRequest
	cmd := &cobra.Command{
		Use:   "new [--admin | --policy POLICY]",
		Short: "Generate a new API key, and let it into an enclave",
		Long: `Generate a new API key locally and print it with its identity. Keep the
API key secret; give the identity to an admin, who lets it in with
"minkms identity add".

With --admin or --policy, it also lets the new identity into the enclave
(--enclave or MINKMS_ENCLAVE), as the identity of MINKMS_API_KEY. It
attaches a proof made with the new key, so an enclave admin may do it too.`,
		Example: `  minkms identity new
  minkms identity new --policy app-read --enclave tenant-1`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&req.Admin, "admin", false, "also add the identity as an admin of the enclave")
	cmd.Flags().StringVar(&req.Policy, "policy", "", "also add the identity with this policy")
	cmd.MarkFlagsMutuallyExclusive("admin", "policy")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		key, err := api.GenerateAPIKey()
		if err != nil {
			return err
		}
		var info *api.IdentityInfo
		if req.Admin || req.Policy != "" {
			if info, err = c.addNew(cmd, enclave(cmd), key, &req); err != nil {
				return err
			}
		}
		if out.json {
			v := map[string]string{"api_key": key.String(), "identity": key.Identity()}
			if info != nil {
				v["enclave"] = info.Enclave
			}
			return writeJSON(c.stdout, v)
		}
		t := newTable(c.stdout)
		t.row("API key:", key.String())
		t.row("Identity:", key.Identity())
		if info != nil {
			t.row("Enclave:", info.Enclave)
		}
		return t.flush()
	}
	return cmd
}

// addNew lets the new key into enclave with a proof of its own.
func (c *cli) addNew(cmd *cobra.Command, enclave string, key *api.APIKey, req *api.CreateIdentityRequest) (*api.IdentityInfo, error) {
	client, err := c.client(cmd)
	if err != nil {
		return nil, err
	}
	v, err := client.Version(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("read the cluster id: %w", err)
	}
	if v.ClusterID == "" {
		return nil, errors.New("the server does not know its cluster id yet; try again when it is ready")
	}
	if req.Proof, err = key.IdentityProof(v.ClusterID, enclave, 0); err != nil {
		return nil, err
	}
	return client.Enclave(enclave).CreateIdentity(cmd.Context(), key.Identity(), req)
}

func (c *cli) identityProof(enclave enclaveOf) *cobra.Command {
	var certFile, keyFile, clusterID string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "proof --enclave ENCLAVE (--api-key k1:... | --cert CERT --key KEY)",
		Short: "Agree to be let into an enclave: print an identity proof",
		Long: `Print an identity proof: a token, signed with your private key, by which
you agree that your identity may be let into ENCLAVE of this cluster. An
enclave admin needs one to add your identity ("minkms identity add ID
--proof TOKEN"); hand it over when the admin asks for it. A cluster admin
needs none.

The key is the API key of --api-key (or MINKMS_API_KEY), or the private key
of the certificate given by --cert and --key (PEM; Ed25519, ECDSA P-256 or
P-384, RSA). The private key never leaves this machine. The proof names the
cluster, the enclave, your identity and its expiry, and is valid for
--expires (at most 24h). It only lets your identity into that enclave: it
is not a secret, but give it to that enclave's admin only.

The cluster id is read from the server named by --server (or MINKMS_SERVER,
GET /version, which needs no client certificate), unless --cluster-id
gives it.`,
		Example: `  minkms identity proof --enclave tenant-1 --api-key k1:...
  minkms identity proof --enclave tenant-1 --cert client.crt --key client.key --expires 30m`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "PEM file of your client certificate (with --key)")
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM file of the certificate's private key (with --cert)")
	cmd.Flags().StringVar(&clusterID, "cluster-id", "", "the cluster id, instead of asking the server")
	cmd.Flags().DurationVar(&lifetime, "expires", api.DefaultProofLifetime, "how long the proof is valid, at most 24h")
	cmd.MarkFlagsRequiredTogether("cert", "key")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !cmd.Flags().Changed("enclave") && env(envEnclave) == "" {
			return errors.New("name the enclave to be let into with --enclave (or " + envEnclave + ")")
		}
		sign, err := c.proofSigner(cmd, certFile, keyFile)
		if err != nil {
			return err
		}
		if lifetime <= 0 || lifetime > api.MaxProofLifetime {
			return fmt.Errorf("--expires must be more than 0 and at most %s", api.MaxProofLifetime)
		}
		if clusterID == "" {
			client, err := c.anonClient(cmd)
			if err != nil {
				return fmt.Errorf("%w (or give --cluster-id)", err)
			}
			v, err := client.Version(cmd.Context())
			if err != nil {
				return fmt.Errorf("read the cluster id: %w", err)
			}
			if clusterID = v.ClusterID; clusterID == "" {
				return errors.New("the server does not know its cluster id yet; try again when it is ready")
			}
		}
		tok, err := sign(clusterID, enclave(cmd), lifetime)
		if err != nil {
			return err
		}
		if !out.json {
			_, err = fmt.Fprintln(c.stdout, tok)
			return err
		}
		claims, err := api.ParseIdentityProof(tok)
		if err != nil {
			return err
		}
		return writeJSON(c.stdout, map[string]any{
			"proof": tok, "identity": claims.Identity, "enclave": claims.Enclave,
			"cluster_id": claims.ClusterID, "expires": claims.Expires,
		})
	}
	return cmd
}

// proofSigner returns what signs a proof: the private key of --cert and
// --key, or the API key of --api-key or MINKMS_API_KEY.
func (c *cli) proofSigner(cmd *cobra.Command, certFile, keyFile string) (func(clusterID, enclave string, lifetime time.Duration) (string, error), error) {
	if certFile != "" {
		if cmd.Flags().Changed("api-key") {
			return nil, errors.New("give either --api-key or --cert and --key, not both")
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("read the certificate and its key: %w", err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("the key in %s cannot sign", keyFile)
		}
		return func(clusterID, enclave string, lifetime time.Duration) (string, error) {
			return api.NewIdentityProof(signer, clusterID, enclave, lifetime)
		}, nil
	}
	keyText := c.apiKey
	if !cmd.Flags().Changed("api-key") {
		keyText = env(envAPIKey)
	}
	if keyText == "" {
		return nil, errors.New("no key to sign with: set --api-key (or " + envAPIKey + "), or --cert and --key")
	}
	key, err := api.ParseAPIKey(keyText)
	if err != nil {
		return nil, err
	}
	return key.IdentityProof, nil
}

func (c *cli) identityOf() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "of CERT_FILE",
		Short: "Print the identity of a certificate",
		Long: `Print the identity of the first certificate in a PEM file, in both forms:
minkms's "h1:..." on the first line and KES's 64 hex digits (what "kes
identity of" prints) on the second; --json names them "identity" and
"kes_identity".
Either form is accepted wherever minkms takes an identity; it is stored and
shown as "h1:...".`,
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
			return writeJSON(c.stdout, map[string]string{"identity": id, "kes_identity": api.HexIdentity(id)})
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n%s\n", id, api.HexIdentity(id))
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
		Use: "add IDENTITY",
		// IDENTITY is "h1:..." or KES's 64 hex digits.
		Short: "Let an identity into an enclave",
		Long: `Let an identity into an enclave, either as an admin of the enclave (--admin)
or with a policy (--policy) that says what it may do.

A cluster admin may add any identity. An enclave admin needs the consent of
the identity's key holder: ask the key holder to run "minkms identity proof
--enclave ENCLAVE" and pass the token it prints with --proof. Without one,
and for an identity that belongs to another enclave, the answer is "not
authorized: insufficient permissions"; an invalid or expired proof is
"invalid identity proof" (this command names the reason when it can see it
in the token).`,
		Example: `  minkms identity add h1:... --policy app-read
  minkms identity add h1:... --admin --enclave tenant-1 --proof p1:...`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&req.Admin, "admin", false, "make the identity an admin of the enclave")
	cmd.Flags().StringVar(&req.Policy, "policy", "", "the policy of the identity")
	cmd.Flags().StringVar(&req.Proof, "proof", "", `the identity proof from its key holder ("minkms identity proof")`)
	cmd.MarkFlagsMutuallyExclusive("admin", "policy")
	cmd.MarkFlagsOneRequired("admin", "policy")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		args[0] = api.CanonicalIdentity(args[0])
		if req.Proof != "" {
			// The server only says "invalid identity proof": say why here,
			// where the token can be read, before sending it.
			if err := checkProof(req.Proof, e.Name(), args[0]); err != nil {
				return err
			}
		}
		info, err := e.CreateIdentity(cmd.Context(), args[0], &req)
		if errors.Is(err, api.ErrNotAllowed) && req.Proof == "" {
			return fmt.Errorf(`%w (an enclave admin needs the consent of the identity's key holder: ask them for "minkms identity proof --enclave %s" and pass it with --proof)`, err, e.Name())
		}
		if err != nil {
			return err
		}
		return c.printIdentity(out, info)
	}
	return cmd
}

// checkProof checks what it can of a proof without the server: its form,
// signature, enclave, identity and expiry. The cluster id is the server's
// to check.
func checkProof(token, enclave, identity string) error {
	claims, err := api.ParseIdentityProof(token)
	if err != nil {
		return fmt.Errorf("--proof: %w", err)
	}
	err = claims.Check(claims.ClusterID, enclave, identity, time.Now())
	if err != nil {
		return fmt.Errorf("--proof: %w", err)
	}
	return nil
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
		info, err := e.DescribeIdentity(cmd.Context(), api.CanonicalIdentity(args[0]))
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
			if err := e.DeleteIdentity(cmd.Context(), api.CanonicalIdentity(args[0])); err != nil {
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
