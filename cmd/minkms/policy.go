package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func (c *cli) policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Manage the policies of an enclave",
		Long: `A policy maps actions (key:create, key:encrypt, ...) to name patterns, in
"allow" and "deny" rules; * matches any run of characters, ? one character.
Deny wins; nothing is allowed that no rule allows. An identity with a policy
may do what its policy allows.

The commands act in the enclave named by --enclave (or MINKMS_ENCLAVE,
"default" if neither is set).`,
		Example: `  cat > app-read.json <<'JSON'
  {"allow": {"key:encrypt": ["app-*"], "key:decrypt": ["app-*"]}}
  JSON
  minkms policy create app-read app-read.json`,
	}
	enclave := enclaveFlag(cmd)
	cmd.AddCommand(
		c.policyCreate(enclave),
		c.listCommand(listing{
			short:   "List policies",
			long:    `List the names of all policies, or of those that start with PREFIX, in order.`,
			example: "  minkms policy ls",
			source:  c.inEnclave(enclave, (*api.Enclave).ListPolicies),
		}),
		c.policyShow(enclave),
		c.policyRemove(enclave),
		c.policyImportKES(enclave),
	)
	return cmd
}

func (c *cli) policyCreate(enclave enclaveOf) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "create NAME FILE",
		Short: "Create or replace a policy from a JSON file",
		Long: `Create a policy from a JSON file ("-" reads standard input) of the form
{"allow": {ACTION: [PATTERN, ...]}, "deny": {ACTION: [PATTERN, ...]}}.
It fails if a policy of that name exists, unless --replace is given.`,
		Example: `  minkms policy create app-read app-read.json
  minkms policy create app-read app-read.json --replace`,
		Args: cobra.ExactArgs(2),
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a policy of that name")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		p, err := c.readPolicy(args[1])
		if err != nil {
			return err
		}
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.CreatePolicy(cmd.Context(), args[0], p, replace)
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, info)
		}
		verb := "Created"
		if replace {
			verb = "Stored"
		}
		_, err = fmt.Fprintf(c.stdout, "%s policy %s\n", verb, info.Name)
		return err
	}
	return cmd
}

// readPolicy reads a policy file strictly: unknown fields and trailing
// data are errors, so that a typo does not silently allow or deny less.
func (c *cli) readPolicy(path string) (*api.Policy, error) {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p api.Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read policy %s: data after the policy", path)
	}
	return &p, nil
}

func (c *cli) policyShow(enclave enclaveOf) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "show NAME",
		Aliases: []string{"stat", "describe"},
		Short:   "Show a policy",
		Long:    `Show a policy's rules and when and by whom it was created.`,
		Example: `  minkms policy show app-read`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		info, err := e.DescribePolicy(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, info)
		}
		fmt.Fprintf(c.stdout, "Name:     %s\nEnclave:  %s\nCreated:  %s\n\n",
			info.Name, info.Enclave, createdBy(info.CreatedAt, info.CreatedBy))
		return c.printRules(&info.Policy)
	}
	return cmd
}

// printRules prints a policy as a table of rules, allow before deny, each
// sorted by action.
func (c *cli) printRules(p *api.Policy) error {
	t := newTable(c.stdout, "RULE", "ACTION", "PATTERNS")
	for _, r := range []struct {
		kind  string
		rules map[string][]string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		actions := make([]string, 0, len(r.rules))
		for a := range r.rules {
			actions = append(actions, a)
		}
		slices.Sort(actions)
		for _, a := range actions {
			t.row(r.kind, a, strings.Join(r.rules[a], " "))
		}
	}
	return t.flush()
}

func (c *cli) policyRemove(enclave enclaveOf) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a policy",
		Long:    `Delete a policy of an enclave.`,
		Example: `  minkms policy rm app-read`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := c.enclave(cmd, enclave)
			if err != nil {
				return err
			}
			if err := e.DeletePolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Deleted policy %s\n", args[0])
			return err
		},
	}
}
