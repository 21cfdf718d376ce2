package integration_test

import (
	"strings"
	"testing"
)

// TestBenchCLIUser runs minkms bench as a policy user against a real node:
// every operation succeeds with the policy bench creates, and the policy
// and the identity are gone afterwards.
func TestBenchCLIUser(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	out := n.MustCLI(n.AdminKey, "bench", "--identity", "user", "--op", "generate,encrypt,decrypt,hmac,create",
		"--requests", "40", "--concurrency", "4", "--keys", "3", "--warmup", "0", "--json")
	var report struct {
		Identity string `json:"identity"`
		Results  []struct {
			Op         string `json:"op"`
			Requests   int    `json:"requests"`
			Errors     int    `json:"errors"`
			FirstError string `json:"first_error"`
		} `json:"results"`
	}
	mustJSON(t, out, &report)
	if report.Identity != "user" || len(report.Results) != 5 {
		t.Fatalf("report: %s", out)
	}
	for _, r := range report.Results {
		if r.Requests != 40 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors (%s); want 40 and none", r.Op, r.Requests, r.Errors, r.FirstError)
		}
	}
	if policies := n.MustCLI(n.AdminKey, "policy", "ls"); strings.Contains(policies, "bench-") {
		t.Errorf("the bench policy is left over: %q", policies)
	}
	var ids struct{ Names []string }
	mustJSON(t, n.MustCLI(n.AdminKey, "identity", "ls", "--json"), &ids)
	if len(ids.Names) != 0 {
		t.Errorf("identities after the bench: %v, want none (the admin is in the configuration)", ids.Names)
	}
	keys := n.MustCLI(n.AdminKey, "key", "ls")
	if got := strings.Count(keys, "bench-"); got != 3+40 {
		t.Errorf("%d bench keys, want 3 shared and 40 created:\n%s", got, keys)
	}
}
