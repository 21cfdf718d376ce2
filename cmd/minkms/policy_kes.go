package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// kesPolicy is one policy of a KES policy file, translated.
type kesPolicy struct {
	Name       string     `json:"name"`
	Policy     api.Policy `json:"policy"`
	Identities []string   `json:"identities,omitempty"` // "h1:" form
}

// kesKeyActions are the KES key APIs, /v1/key/<op>/<name>, and the minkms
// actions they are.
var kesKeyActions = map[string]string{
	"create":   "key:create",
	"import":   "key:import",
	"describe": "key:describe",
	"list":     "key:list",
	"delete":   "key:delete",
	"generate": "key:generate",
	"encrypt":  "key:encrypt",
	"decrypt":  "key:decrypt",
	"hmac":     "key:hmac",
}

// kesNodeActions are the KES node APIs that a minkms policy grants, on
// every node.
var kesNodeActions = map[string]string{
	"/v1/metrics":         "metrics:read",
	"/v1/log/error":       "log:read",
	"/v1/log/error/trace": "log:read",
	"/v1/log/audit":       "audit:read",
	"/v1/log/audit/trace": "audit:read",
}

// kesOpenPaths are KES APIs that every identity the cluster knows may call
// in minkms, with or without a policy: allowing them needs no rule.
var kesOpenPaths = map[string]bool{
	"/v1/status":                 true,
	"/v1/ready":                  true,
	"/version":                   true,
	"/v1/identity/self/describe": true,
}

// errKESPath is returned for a KES policy path with no minkms equivalent.
var errKESPath = errors.New("no minkms equivalent")

// translateKESPath adds the rule that path means to rules.
func translateKESPath(rules map[string][]string, path string, deny bool) error {
	if action, ok := kesNodeActions[path]; ok {
		rules[action] = appendNew(rules[action], "*")
		return nil
	}
	if kesOpenPaths[path] {
		if deny {
			return fmt.Errorf("deny %s: %w (every identity the cluster knows may call it)", path, errKESPath)
		}
		return nil
	}
	rest, ok := strings.CutPrefix(path, "/v1/key/")
	if !ok {
		return fmt.Errorf("%s: %w", path, errKESPath)
	}
	op, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%s: %w (want /v1/key/<operation>/<key name pattern>)", path, errKESPath)
	}
	if strings.ContainsAny(name, `[]\`) {
		return fmt.Errorf("%s: %w (minkms patterns have * and ? only)", path, errKESPath)
	}
	var actions []string
	switch {
	case op == "*":
		for _, a := range kesKeyActions {
			actions = append(actions, a)
		}
		sort.Strings(actions)
	case kesKeyActions[op] != "":
		actions = []string{kesKeyActions[op]}
	default:
		return fmt.Errorf("%s: %w (unknown key operation %q)", path, errKESPath, op)
	}
	for _, a := range actions {
		rules[a] = appendNew(rules[a], name)
	}
	return nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// parseKESPolicies translates the policies of a KES policy file (or a
// whole KES config: only its "policy" section is read),
//
//	policy:
//	  NAME:
//	    allow: [/v1/key/generate/app-*, ...]
//	    deny:  [...]
//	    identities: [<hex or h1: identity>, ...]
//
// in name order. Every path without a minkms equivalent is an error naming
// it.
func parseKESPolicies(data []byte) ([]kesPolicy, error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	node, ok := doc["policy"]
	if !ok {
		return nil, errors.New(`no "policy" section`)
	}
	// Decode the policy section strictly: a misspelt "alow" must not
	// silently allow less.
	raw, err := yaml.Marshal(&node)
	if err != nil {
		return nil, err
	}
	var file map[string]struct {
		Allow      []string `yaml:"allow"`
		Deny       []string `yaml:"deny"`
		Identities []string `yaml:"identities"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var out []kesPolicy
	var errs []error
	for name, p := range file {
		kp := kesPolicy{Name: name, Policy: api.Policy{Allow: map[string][]string{}, Deny: map[string][]string{}}}
		for _, path := range p.Allow {
			if err := translateKESPath(kp.Policy.Allow, path, false); err != nil {
				errs = append(errs, fmt.Errorf("policy %s: allow %w", name, err))
			}
		}
		for _, path := range p.Deny {
			if err := translateKESPath(kp.Policy.Deny, path, true); err != nil {
				errs = append(errs, fmt.Errorf("policy %s: deny %w", name, err))
			}
		}
		for _, id := range p.Identities {
			canon := api.CanonicalIdentity(id)
			if api.HexIdentity(canon) == "" {
				errs = append(errs, fmt.Errorf("policy %s: %q is not an identity (want 64 hex digits or h1:...)", name, id))
				continue
			}
			kp.Identities = appendNew(kp.Identities, canon)
		}
		if len(kp.Policy.Allow) == 0 {
			kp.Policy.Allow = nil
		}
		if len(kp.Policy.Deny) == 0 {
			kp.Policy.Deny = nil
		}
		out = append(out, kp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New(`the "policy" section holds no policy`)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (c *cli) policyImportKES(enclave enclaveOf) *cobra.Command {
	var replace, dryRun bool
	cmd := &cobra.Command{
		Use:   "import-kes FILE",
		Short: "Import the policies of a KES policy file or config",
		Long: `Import the policies of a KES policy file, or of the "policy" section of a
KES config ("-" reads standard input):

  policy:
    my-app:
      allow: [/v1/key/create/my-app*, /v1/key/generate/my-app*, /v1/key/decrypt/my-app*, /v1/status]
      deny:  [/v1/key/generate/my-app-internal*]
      identities: [<the client's identity: 64 hex digits, or h1:...>]

Each KES API path becomes the minkms action it is: /v1/key/<op>/<pattern> is
key:<op> on <pattern> (create, import, describe, list, delete, generate,
encrypt, decrypt, hmac; * for all of them), /v1/metrics is metrics:read,
/v1/log/error is log:read and /v1/log/audit is audit:read (on every node).
/v1/status, /v1/ready, /version and /v1/identity/self/describe need no rule:
every identity the cluster knows may call them. A path with no minkms
equivalent (identity and policy management, [...] patterns) is refused,
named, and nothing is imported.

The identities of a policy (hex as KES writes them, or h1:) are added with
that policy when a cluster admin imports. Anyone else gets them listed: an
enclave admin adds each with the consent of its key holder ("minkms identity
add ID --policy NAME --proof ..."). --dry-run prints the translation and
changes nothing.`,
		Example: `  minkms policy import-kes kes-config.yml --dry-run
  minkms policy import-kes kes-policy.yml --enclave tenant-1`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "replace policies of the same names")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the translated policies and change nothing")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var (
			data []byte
			err  error
		)
		if args[0] == "-" {
			data, err = io.ReadAll(io.LimitReader(c.stdin, 1<<20))
		} else {
			data, err = os.ReadFile(args[0])
		}
		if err != nil {
			return fmt.Errorf("read KES policy file: %w", err)
		}
		policies, err := parseKESPolicies(data)
		if err != nil {
			return fmt.Errorf("KES policy file %s: %w", args[0], err)
		}
		if dryRun {
			if out.json {
				return writeJSON(c.stdout, policies)
			}
			for _, p := range policies {
				fmt.Fprintf(c.stdout, "Policy %s:\n", p.Name)
				if err := c.printRules(&p.Policy); err != nil {
					return err
				}
				for _, id := range p.Identities {
					fmt.Fprintf(c.stdout, "  identity %s\n", id)
				}
			}
			return nil
		}
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		self, err := client.DescribeSelf(cmd.Context())
		if err != nil {
			return err
		}
		type result struct {
			Policy  string   `json:"policy"`
			Added   []string `json:"identities_added,omitempty"`
			Pending []string `json:"identities_to_add,omitempty"`
		}
		var results []result
		for _, p := range policies {
			if _, err := e.CreatePolicy(cmd.Context(), p.Name, &p.Policy, replace); err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
			r := result{Policy: p.Name}
			for _, id := range p.Identities {
				if !self.ClusterAdmin {
					r.Pending = append(r.Pending, id)
					continue
				}
				if _, err := e.CreateIdentity(cmd.Context(), id, &api.CreateIdentityRequest{Policy: p.Name}); err != nil {
					return fmt.Errorf("policy %s: identity %s: %w", p.Name, id, err)
				}
				r.Added = append(r.Added, id)
			}
			results = append(results, r)
		}
		if out.json {
			return writeJSON(c.stdout, results)
		}
		for _, r := range results {
			fmt.Fprintf(c.stdout, "Imported policy %s\n", r.Policy)
			for _, id := range r.Added {
				fmt.Fprintf(c.stdout, "  Added identity %s\n", id)
			}
			for _, id := range r.Pending {
				fmt.Fprintf(c.stdout, "  To add, with its key holder's proof: minkms identity add %s --policy %s --enclave %s --proof p1:...\n", id, r.Policy, e.Name())
			}
		}
		return nil
	}
	return cmd
}
