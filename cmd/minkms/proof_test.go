package main

import (
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestIdentityProof: "identity proof" signs with the API key for the named
// enclave and cluster, and "identity add --proof" names what is wrong with
// a proof before it sends anything.
func TestIdentityProof(t *testing.T) {
	f := MustFakeServer(t, nil)
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "", "identity", "proof", "--enclave", "t1", "--cluster-id", "c-1", "--api-key", key.String(), "--expires", "2h")
	if code != 0 {
		t.Fatalf("identity proof: exit %d, %s", code, stderr)
	}
	tok := strings.TrimSpace(stdout)
	claims, err := api.ParseIdentityProof(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := claims.Check("c-1", "t1", key.Identity(), time.Now().Add(119*time.Minute)); err != nil {
		t.Fatalf("the proof does not fit: %v", err)
	}

	for name, args := range map[string][]string{
		"NoEnclave":     {"identity", "proof", "--cluster-id", "c-1", "--api-key", key.String()},
		"TooLong":       {"identity", "proof", "--enclave", "t1", "--cluster-id", "c-1", "--api-key", key.String(), "--expires", "25h"},
		"KeyAndCert":    {"identity", "proof", "--enclave", "t1", "--cluster-id", "c-1", "--api-key", key.String(), "--cert", "c", "--key", "k"},
		"CertNoKey":     {"identity", "proof", "--enclave", "t1", "--cluster-id", "c-1", "--cert", "c"},
		"OtherEnclave":  {"identity", "add", key.Identity(), "--admin", "--enclave", "t2", "--proof", tok},
		"OtherIdentity": {"identity", "add", f.key.Identity(), "--admin", "--enclave", "t1", "--proof", tok},
		"Garbage":       {"identity", "add", key.Identity(), "--admin", "--enclave", "t1", "--proof", "p1:x"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, stderr, code := runCLI(t, "", args...); code != 1 {
				t.Fatalf("exit %d, stderr %q; want 1", code, stderr)
			}
		})
	}
	if r := f.Requests(); len(r) != 0 {
		t.Fatalf("refused proofs were sent: %v", r)
	}

	t.Run("Sent", func(t *testing.T) {
		route := "/v1/enclaves/t1/identities/" + key.Identity()
		f.mu.Lock()
		f.answers = map[string]answer{"PUT " + route: {200, `{"identity":"` + key.Identity() + `","enclave":"t1","admin":true}`}}
		f.mu.Unlock()
		if _, stderr, code := runCLI(t, "", "identity", "add", key.Identity(), "--admin", "--enclave", "t1", "--proof", tok); code != 0 {
			t.Fatalf("exit %d, %s", code, stderr)
		}
		want := seen{"PUT", route, `{"admin":true,"proof":"` + tok + `"}`}
		if r := f.Requests(); len(r) != 1 || r[0] != want {
			t.Fatalf("requests %v, want %v", r, want)
		}
	})
}
