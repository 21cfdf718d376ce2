package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestParseKESPolicies: a KES policy file with allow and deny paths
// translates into the minkms policy it means; its hex identities become
// "h1:" ones; the rest of a KES config is ignored.
func TestParseKESPolicies(t *testing.T) {
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	file := `address: 0.0.0.0:7373
admin:
  identity: disabled
policy:
  minio:
    allow:
    - /v1/key/create/minio-*
    - /v1/key/generate/minio-*
    - /v1/key/decrypt/minio-*
    - /v1/key/list/*
    - /v1/status
    - /v1/metrics
    - /v1/log/error
    - /v1/log/audit
    deny:
    - /v1/key/generate/minio-internal*
    identities:
    - ` + api.HexIdentity(key.Identity()) + `
  reader:
    allow:
    - /v1/key/*/app-?
`
	got, err := parseKESPolicies([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []kesPolicy{
		{
			Name: "minio",
			Policy: api.Policy{
				Allow: map[string][]string{
					"key:create":   {"minio-*"},
					"key:generate": {"minio-*"},
					"key:decrypt":  {"minio-*"},
					"key:list":     {"*"},
					"metrics:read": {"*"},
					"log:read":     {"*"},
					"audit:read":   {"*"},
				},
				Deny: map[string][]string{"key:generate": {"minio-internal*"}},
			},
			Identities: []string{key.Identity()},
		},
		{
			Name: "reader",
			Policy: api.Policy{Allow: map[string][]string{
				"key:create": {"app-?"}, "key:import": {"app-?"}, "key:describe": {"app-?"}, "key:list": {"app-?"},
				"key:delete": {"app-?"}, "key:generate": {"app-?"}, "key:encrypt": {"app-?"}, "key:decrypt": {"app-?"},
				"key:hmac": {"app-?"},
			}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got\n%s\nwant\n%s", g, w)
	}
}

// TestParseKESPoliciesRefused: a path with no minkms equivalent is refused
// with its name, and so are every other such path and misspelt fields.
func TestParseKESPoliciesRefused(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       []string
	}{
		{"IdentityAPI", "policy:\n  p:\n    allow: [/v1/key/create/a*, /v1/identity/describe/*, /v1/policy/list/*]\n",
			[]string{"/v1/identity/describe/*", "/v1/policy/list/*", "no minkms equivalent"}},
		{"UnknownKeyOp", "policy:\n  p:\n    allow: [/v1/key/bulk/decrypt/*]\n", []string{"/v1/key/bulk/decrypt/*"}},
		{"Brackets", "policy:\n  p:\n    allow: [\"/v1/key/create/app-[ab]\"]\n", []string{"/v1/key/create/app-[ab]"}},
		{"DenyStatus", "policy:\n  p:\n    deny: [/v1/status]\n", []string{"deny /v1/status"}},
		{"Misspelt", "policy:\n  p:\n    alow: [/v1/key/create/a]\n", []string{"alow"}},
		{"BadIdentity", "policy:\n  p:\n    identities: [abc]\n", []string{`"abc" is not an identity`}},
		{"NoPolicy", "address: 0.0.0.0:7373\n", []string{`no "policy" section`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseKESPolicies([]byte(tt.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestPolicyImportKESDryRun: the command prints the translation and
// refuses an untranslatable path by name, without a server.
func TestPolicyImportKESDryRun(t *testing.T) {
	stdout, stderr, code := runCLI(t, "policy:\n  app:\n    allow: [/v1/key/generate/app-*]\n", "policy", "import-kes", "-", "--dry-run", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []kesPolicy
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 1 || got[0].Policy.Allow["key:generate"][0] != "app-*" {
		t.Fatalf("stdout %s: %v", stdout, err)
	}
	_, stderr, code = runCLI(t, "policy:\n  app:\n    allow: [/v1/api]\n", "policy", "import-kes", "-", "--dry-run")
	if code == exitOK || !strings.Contains(stderr, "/v1/api") {
		t.Errorf("exit %d, stderr %q; want the path refused by name", code, stderr)
	}
}
