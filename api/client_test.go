package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

var (
	created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	adminID = "h1:oFCDfYUHBYLM9zlLCYiEfMMSy4glm4lImfbyOc8XkaU"
)

// TestRoutes checks that every method sends the documented method, path and
// body, and decodes the documented answer.
func TestRoutes(t *testing.T) {
	tests := []struct {
		name   string
		call   func(context.Context, *api.Client) (any, error)
		method string
		path   string // escaped, with query
		body   string // JSON the server must receive; "" for none
		answer string // JSON the server answers; "" for 200 with no body
		want   any
	}{
		{
			name:   "Version",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.Version(ctx) },
			method: "GET", path: "/version",
			answer: `{"version":"v1.2.3","commit":"abc"}`,
			want:   &api.VersionResponse{Version: "v1.2.3", Commit: "abc"},
		},
		{
			name:   "Status",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.Status(ctx) },
			method: "GET", path: "/v1/status",
			answer: `{"version":"v1","os":"linux","arch":"amd64","uptime":7,"num_cpu":8,"num_cpu_used":4,"mem_heap_used":1024,"mem_stack_used":512,"node_id":"n1","raft_role":"leader","leader":true,"leader_id":"n1"}`,
			want: &api.StatusResponse{Version: "v1", OS: "linux", Arch: "amd64", UpTime: 7, CPUs: 8, UsableCPUs: 4, HeapAlloc: 1024, StackAlloc: 512,
				NodeID: "n1", Role: "leader", Leader: true, LeaderID: "n1"},
		},
		{
			name:   "Ready",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.Ready(ctx) },
			method: "GET", path: "/v1/ready",
			answer: `{"status":"ok"}`,
		},
		{
			name:   "Live",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.Live(ctx) },
			method: "GET", path: "/v1/health/live",
			answer: `{"status":"ok"}`,
		},
		{
			name:   "DescribeSelf",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.DescribeSelf(ctx) },
			method: "GET", path: "/v1/identity/self/describe",
			answer: `{"identity":"h1:x","enclave":"default","admin":false,"policy":"p","policy_rules":{"allow":{"key:encrypt":["a*"]}}}`,
			want: &api.SelfResponse{
				IdentityInfo: api.IdentityInfo{Identity: "h1:x", Enclave: "default", Policy: "p"},
				PolicyRules:  &api.Policy{Allow: map[string][]string{"key:encrypt": {"a*"}}},
			},
		},
		{
			name:   "CreateKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.CreateKey(ctx, "my-key") },
			method: "PUT", path: "/v1/key/create/my-key",
		},
		{
			name:   "CreateKeyEscaped",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.CreateKey(ctx, "a b/c?d") },
			method: "PUT", path: "/v1/key/create/a%20b%2Fc%3Fd",
		},
		{
			name: "ImportKey",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.ImportKey(ctx, "k", &api.ImportKeyRequest{Key: []byte{1, 2, 3}, Cipher: "AES256"})
			},
			method: "PUT", path: "/v1/key/import/k",
			body: `{"key":"AQID","cipher":"AES256"}`,
		},
		{
			name:   "DescribeKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.DescribeKey(ctx, "k") },
			method: "GET", path: "/v1/key/describe/k",
			answer: `{"name":"k","algorithm":"AES256","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a"}`,
			want:   &api.KeyInfo{Name: "k", Algorithm: "AES256", CreatedAt: created, CreatedBy: "h1:a"},
		},
		{
			name:   "ListKeysAll",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.ListKeys(ctx, "", "", 0) },
			method: "GET", path: "/v1/key/list/*",
			answer: `{"names":["a","b"],"continue_at":"c"}`,
			want:   &api.ListResponse{Names: []string{"a", "b"}, ContinueAt: "c"},
		},
		{
			name:   "ListKeysPage",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.ListKeys(ctx, "app-", "app-c", 2) },
			method: "GET", path: "/v1/key/list/app-?continue=app-c&limit=2",
			answer: `{"names":["app-c","app-d"]}`,
			want:   &api.ListResponse{Names: []string{"app-c", "app-d"}},
		},
		{
			name:   "DeleteKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.DeleteKey(ctx, "k") },
			method: "DELETE", path: "/v1/key/delete/k",
		},
		{
			name:   "GenerateKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.GenerateKey(ctx, "k", []byte("ctx")) },
			method: "PUT", path: "/v1/key/generate/k",
			body:   `{"context":"Y3R4"}`,
			answer: `{"plaintext":"AQI=","ciphertext":"AwQ="}`,
			want:   &api.GenerateKeyResponse{Plaintext: []byte{1, 2}, Ciphertext: []byte{3, 4}},
		},
		{
			name: "Encrypt",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Encrypt(ctx, "k", []byte("hello"), nil)
			},
			method: "PUT", path: "/v1/key/encrypt/k",
			body:   `{"plaintext":"aGVsbG8="}`,
			answer: `{"ciphertext":"AwQ="}`,
			want:   []byte{3, 4},
		},
		{
			name: "Decrypt",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Decrypt(ctx, "k", []byte{3, 4}, []byte("ctx"))
			},
			method: "PUT", path: "/v1/key/decrypt/k",
			body:   `{"ciphertext":"AwQ=","context":"Y3R4"}`,
			answer: `{"plaintext":"aGVsbG8="}`,
			want:   []byte("hello"),
		},
		{
			name:   "HMAC",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.HMAC(ctx, "k", []byte("m")) },
			method: "PUT", path: "/v1/key/hmac/k",
			body:   `{"message":"bQ=="}`,
			answer: `{"hmac":"BQY="}`,
			want:   []byte{5, 6},
		},
		{
			name:   "CreateEnclave",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.CreateEnclave(ctx, "t1") },
			method: "PUT", path: "/v1/enclaves/t1",
			answer: `{"name":"t1","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a"}`,
			want:   &api.EnclaveInfo{Name: "t1", CreatedAt: created, CreatedBy: "h1:a"},
		},
		{
			name:   "DescribeEnclave",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.DescribeEnclave(ctx, "t1") },
			method: "GET", path: "/v1/enclaves/t1",
			answer: `{"name":"t1","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a"}`,
			want:   &api.EnclaveInfo{Name: "t1", CreatedAt: created, CreatedBy: "h1:a"},
		},
		{
			name:   "ListEnclaves",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.ListEnclaves(ctx, "t", "t2", 10) },
			method: "GET", path: "/v1/enclaves?continue=t2&limit=10&prefix=t",
			answer: `{"names":["t2"]}`,
			want:   &api.ListResponse{Names: []string{"t2"}},
		},
		{
			name:   "DeleteEnclave",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.DeleteEnclave(ctx, "t1") },
			method: "DELETE", path: "/v1/enclaves/t1",
		},
		{
			name: "EnclaveCreateKey",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").CreateKey(ctx, "k", &api.CreateKeyRequest{Algorithm: "ChaCha20"})
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k",
			body:   `{"algorithm":"ChaCha20"}`,
			answer: `{"name":"k","algorithm":"ChaCha20","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a","version":1}`,
			want:   &api.KeyInfo{Name: "k", Algorithm: "ChaCha20", CreatedAt: created, CreatedBy: "h1:a", Version: 1},
		},
		{
			name: "EnclaveCreateKeyNoBody",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").CreateKey(ctx, "k", nil)
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k",
			answer: `{"name":"k","algorithm":"AES256","version":1}`,
			want:   &api.KeyInfo{Name: "k", Algorithm: "AES256", Version: 1},
		},
		{
			name: "EnclaveImportKey",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").ImportKey(ctx, "k", &api.ImportKeyRequest{Key: []byte{1}, Cipher: "ChaCha20"})
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k/import",
			body:   `{"key":"AQ==","cipher":"ChaCha20"}`,
			answer: `{"name":"k","algorithm":"ChaCha20","version":1}`,
			want:   &api.KeyInfo{Name: "k", Algorithm: "ChaCha20", Version: 1},
		},
		{
			name:   "EnclaveDescribeKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.Enclave("t1").DescribeKey(ctx, "k") },
			method: "GET", path: "/v1/enclaves/t1/keys/k",
			answer: `{"name":"k","algorithm":"AES256","version":2,"versions":[{"version":1,"algorithm":"AES256","created_at":"2026-01-02T03:04:05Z","created_by":"h1:a"},{"version":2,"algorithm":"AES256"}]}`,
			want: &api.KeyInfo{Name: "k", Algorithm: "AES256", Version: 2, Versions: []api.KeyVersionInfo{
				{Version: 1, Algorithm: "AES256", CreatedAt: created, CreatedBy: "h1:a"},
				{Version: 2, Algorithm: "AES256"},
			}},
		},
		{
			name: "EnclaveListKeys",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").ListKeys(ctx, "", "", 0)
			},
			method: "GET", path: "/v1/enclaves/t1/keys",
			answer: `{"names":[]}`,
			want:   &api.ListResponse{Names: []string{}},
		},
		{
			name:   "EnclaveDeleteKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.Enclave("t1").DeleteKey(ctx, "k") },
			method: "DELETE", path: "/v1/enclaves/t1/keys/k",
		},
		{
			name:   "EnclaveRotateKey",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.Enclave("t1").RotateKey(ctx, "k") },
			method: "POST", path: "/v1/enclaves/t1/keys/k/rotate",
			answer: `{"version":3}`,
			want:   &api.RotateKeyResponse{Version: 3},
		},
		{
			name: "EnclaveDeleteKeyVersion",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Enclave("t1").DeleteKeyVersion(ctx, "k", 2)
			},
			method: "DELETE", path: "/v1/enclaves/t1/keys/k/versions/2",
		},
		{
			name: "EnclaveGenerateKey",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").GenerateKey(ctx, "k", nil, 16)
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k/generate",
			body:   `{"length":16}`,
			answer: `{"plaintext":"AQI=","ciphertext":"AwQ="}`,
			want:   &api.GenerateKeyResponse{Plaintext: []byte{1, 2}, Ciphertext: []byte{3, 4}},
		},
		{
			name: "EnclaveEncrypt",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").Encrypt(ctx, "k", []byte("hello"), []byte("ctx"))
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k/encrypt",
			body:   `{"plaintext":"aGVsbG8=","context":"Y3R4"}`,
			answer: `{"ciphertext":"AwQ="}`,
			want:   []byte{3, 4},
		},
		{
			name: "EnclaveDecrypt",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").Decrypt(ctx, "k", []byte{3, 4}, nil)
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k/decrypt",
			body:   `{"ciphertext":"AwQ="}`,
			answer: `{"plaintext":"aGVsbG8="}`,
			want:   []byte("hello"),
		},
		{
			name: "EnclaveHMAC",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").HMAC(ctx, "k", []byte("m"))
			},
			method: "PUT", path: "/v1/enclaves/t1/keys/k/hmac",
			body:   `{"message":"bQ=="}`,
			answer: `{"hmac":"BQY="}`,
			want:   []byte{5, 6},
		},
		{
			name: "EnclaveCreateIdentity",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").CreateIdentity(ctx, adminID, &api.CreateIdentityRequest{Policy: "p"})
			},
			method: "PUT", path: "/v1/enclaves/t1/identities/" + adminID,
			body:   `{"policy":"p"}`,
			answer: `{"identity":"` + adminID + `","enclave":"t1","admin":false,"policy":"p"}`,
			want:   &api.IdentityInfo{Identity: adminID, Enclave: "t1", Policy: "p"},
		},
		{
			name: "EnclaveDescribeIdentity",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").DescribeIdentity(ctx, adminID)
			},
			method: "GET", path: "/v1/enclaves/t1/identities/" + adminID,
			answer: `{"identity":"` + adminID + `","enclave":"t1","admin":true}`,
			want:   &api.IdentityInfo{Identity: adminID, Enclave: "t1", Admin: true},
		},
		{
			name: "EnclaveListIdentities",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").ListIdentities(ctx, "h1:", "", 5)
			},
			method: "GET", path: "/v1/enclaves/t1/identities?limit=5&prefix=h1%3A",
			answer: `{"names":["` + adminID + `"]}`,
			want:   &api.ListResponse{Names: []string{adminID}},
		},
		{
			name: "EnclaveDeleteIdentity",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Enclave("t1").DeleteIdentity(ctx, adminID)
			},
			method: "DELETE", path: "/v1/enclaves/t1/identities/" + adminID,
		},
		{
			name: "EnclaveCreatePolicy",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").CreatePolicy(ctx, "p", &api.Policy{Allow: map[string][]string{"key:encrypt": {"a*"}}}, false)
			},
			method: "PUT", path: "/v1/enclaves/t1/policies/p",
			body:   `{"allow":{"key:encrypt":["a*"]}}`,
			answer: `{"name":"p","enclave":"t1","policy":{"allow":{"key:encrypt":["a*"]}},"created_at":"2026-01-02T03:04:05Z","created_by":"h1:a"}`,
			want: &api.PolicyInfo{Name: "p", Enclave: "t1", Policy: api.Policy{Allow: map[string][]string{"key:encrypt": {"a*"}}},
				CreatedAt: created, CreatedBy: "h1:a"},
		},
		{
			name: "EnclaveReplacePolicy",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").CreatePolicy(ctx, "p", &api.Policy{Deny: map[string][]string{"key:delete": {"*"}}}, true)
			},
			method: "PUT", path: "/v1/enclaves/t1/policies/p?replace=true",
			body:   `{"deny":{"key:delete":["*"]}}`,
			answer: `{"name":"p","enclave":"t1","policy":{"deny":{"key:delete":["*"]}}}`,
			want:   &api.PolicyInfo{Name: "p", Enclave: "t1", Policy: api.Policy{Deny: map[string][]string{"key:delete": {"*"}}}},
		},
		{
			name:   "EnclaveDescribePolicy",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.Enclave("t1").DescribePolicy(ctx, "p") },
			method: "GET", path: "/v1/enclaves/t1/policies/p",
			answer: `{"name":"p","enclave":"t1","policy":{}}`,
			want:   &api.PolicyInfo{Name: "p", Enclave: "t1"},
		},
		{
			name: "EnclaveListPolicies",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Enclave("t1").ListPolicies(ctx, "", "p", 0)
			},
			method: "GET", path: "/v1/enclaves/t1/policies?continue=p",
			answer: `{"names":["p","q"]}`,
			want:   &api.ListResponse{Names: []string{"p", "q"}},
		},
		{
			name: "EnclaveDeletePolicy",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Enclave("t1").DeletePolicy(ctx, "p")
			},
			method: "DELETE", path: "/v1/enclaves/t1/policies/p",
		},
		{
			name:   "ClusterMembers",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.ClusterMembers(ctx) },
			method: "GET", path: "/v1/cluster/members",
			answer: `{"members":[{"id":"n1","peer_address":"n1.example:7374","api_address":"n1.example:7373","suffrage":"voter","leader":true},` +
				`{"id":"n4","peer_address":"n4.example:7374","api_address":"","suffrage":"nonvoter","leader":false}]}`,
			want: &api.ClusterMembers{Members: []api.ClusterMember{
				{ID: "n1", PeerAddress: "n1.example:7374", APIAddress: "n1.example:7373", Suffrage: api.SuffrageVoter, Leader: true},
				{ID: "n4", PeerAddress: "n4.example:7374", Suffrage: api.SuffrageNonvoter},
			}},
		},
		{
			name:   "AddNode",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return c.AddNode(ctx, "n4.example:7374") },
			method: "POST", path: "/v1/cluster/members",
			body:   `{"address":"n4.example:7374"}`,
			answer: `{"id":"n4","peer_address":"n4.example:7374","api_address":"n4.example:7373","suffrage":"nonvoter","leader":false}`,
			want:   &api.ClusterMember{ID: "n4", PeerAddress: "n4.example:7374", APIAddress: "n4.example:7373", Suffrage: api.SuffrageNonvoter},
		},
		{
			name:   "RemoveNode",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.RemoveNode(ctx, "n3") },
			method: "DELETE", path: "/v1/cluster/members/n3",
		},
		{
			name:   "RemoveNodeEscaped",
			call:   func(ctx context.Context, c *api.Client) (any, error) { return nil, c.RemoveNode(ctx, "a b?") },
			method: "DELETE", path: "/v1/cluster/members/a%20b%3F",
		},
		{
			name: "EnclaveEscaped",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Enclave("a/b").DeleteKey(ctx, "c d")
			},
			method: "DELETE", path: "/v1/enclaves/a%2Fb/keys/c%20d",
		},
	}

	key := MustGenerateAPIKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != tt.method {
					t.Errorf("method = %s, want %s", r.Method, tt.method)
				}
				path := r.URL.EscapedPath()
				if r.URL.RawQuery != "" {
					path += "?" + r.URL.RawQuery
				}
				if path != tt.path {
					t.Errorf("path = %s, want %s", path, tt.path)
				}
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("read body: %v", err)
				}
				checkJSONBody(t, body, tt.body)
				if tt.answer == "" {
					w.WriteHeader(http.StatusOK)
					return
				}
				writeJSON(w, http.StatusOK, tt.answer)
			})
			c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
			got, err := tt.call(MustContext(t), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if srv.Hits() != 1 {
				t.Errorf("server got %d requests, want 1", srv.Hits())
			}
			if tt.want == nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(tt.want)
				t.Errorf("answer = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

// checkJSONBody reports a test error unless body is the JSON document
// want, or empty if want is "".
func checkJSONBody(t *testing.T, body []byte, want string) {
	t.Helper()
	if want == "" {
		if len(body) != 0 {
			t.Errorf("body = %s, want none", body)
		}
		return
	}
	var gotV, wantV any
	if err := json.Unmarshal(body, &gotV); err != nil {
		t.Errorf("body %q is not JSON: %v", body, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatalf("bad test: %v", err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("body = %s, want %s", body, want)
	}
}

func TestErrors(t *testing.T) {
	sentinels := []struct {
		name string
		err  *api.Error
	}{
		{"ErrKeyNotFound", api.ErrKeyNotFound},
		{"ErrKeyExists", api.ErrKeyExists},
		{"ErrDecrypt", api.ErrDecrypt},
		{"ErrNotAllowed", api.ErrNotAllowed},
		{"ErrPolicyExists", api.ErrPolicyExists},
		{"ErrPolicyNotFound", api.ErrPolicyNotFound},
		{"ErrIdentityExists", api.ErrIdentityExists},
		{"ErrIdentityNotFound", api.ErrIdentityNotFound},
		{"ErrEnclaveExists", api.ErrEnclaveExists},
		{"ErrEnclaveNotFound", api.ErrEnclaveNotFound},
		{"ErrKeyVersionNotFound", api.ErrKeyVersionNotFound},
		{"ErrKeyChanged", api.ErrKeyChanged},
		{"ErrNoCertificate", api.ErrNoCertificate},
		{"ErrNoLeader", api.ErrNoLeader},
		{"ErrOverloaded", api.ErrOverloaded},
		{"ErrOutcomeUnknown", api.ErrOutcomeUnknown},
	}
	key := MustGenerateAPIKey(t)
	for _, s := range sentinels {
		t.Run(s.name, func(t *testing.T) {
			srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) { writeError(w, s.err) })
			c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
			_, err := c.DescribeKey(MustContext(t), "k")
			if !errors.Is(err, s.err) {
				t.Fatalf("error = %v, want %v", err, s.err)
			}
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.Status != s.err.Status {
				t.Errorf("error = %#v, want status %d", err, s.err.Status)
			}
			for _, other := range sentinels {
				if other.err != s.err && errors.Is(err, other.err) {
					t.Errorf("error %q also matches %s", err, other.name)
				}
			}
		})
	}
	t.Run("NativeConflict", func(t *testing.T) {
		// The native routes answer 409 with the same message.
		srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusConflict, `{"message":"key already exists"}`)
		})
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		_, err := c.Enclave("default").CreateKey(MustContext(t), "k", nil)
		if !errors.Is(err, api.ErrKeyExists) {
			t.Fatalf("error = %v, want ErrKeyExists", err)
		}
		if apiErr, _ := errors.AsType[*api.Error](err); apiErr.Status != http.StatusConflict {
			t.Errorf("status = %d, want 409", apiErr.Status)
		}
	})
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"PlainText", http.StatusBadGateway, "text/plain", "upstream down\nmore detail", "upstream down"},
		{"HTML", http.StatusBadGateway, "text/html", "<html><body>Bad Gateway</body></html>", "502 Bad Gateway"},
		{"Empty", http.StatusInternalServerError, "", "", "500 Internal Server Error"},
		{"JSONWithoutMessage", http.StatusTeapot, "application/json", `{"error":"x"}`, "418 I'm a teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
			err := c.DeleteKey(MustContext(t), "k")
			apiErr, ok := errors.AsType[*api.Error](err)
			if !ok {
				t.Fatalf("error = %v, want an *api.Error", err)
			}
			if apiErr.Status != tt.status || apiErr.Error() != tt.want {
				t.Errorf("error = %d %q, want %d %q", apiErr.Status, apiErr.Error(), tt.status, tt.want)
			}
		})
	}
	t.Run("ResponseTooLarge", func(t *testing.T) {
		srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write(bytes.Repeat([]byte(" "), 9<<20))
		})
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		_, err := c.Status(MustContext(t))
		if !errors.Is(err, api.ErrResponseTooLarge) {
			t.Fatalf("error = %v, want ErrResponseTooLarge", err)
		}
	})
}

// closedAddress returns a loopback address that refuses connections.
func closedAddress(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestFailover(t *testing.T) {
	key := MustGenerateAPIKey(t)
	ok := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, `{"version":"v1"}`) }

	t.Run("ConnectionRefused", func(t *testing.T) {
		good := MustFakeServer(t, key, ok)
		// The second endpoint has no scheme: https:// is implied.
		c := MustClient(t, key, []*fakeServer{good}, "https://"+closedAddress(t), strings.TrimPrefix(good.URL, "https://"))
		for i := range 2 {
			if _, err := c.Version(MustContext(t)); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if good.Hits() != 2 {
			t.Errorf("good endpoint got %d requests, want 2", good.Hits())
		}
	})
	t.Run("AllRefused", func(t *testing.T) {
		c := MustClient(t, key, nil, closedAddress(t), closedAddress(t))
		_, err := c.Version(MustContext(t))
		if err == nil {
			t.Fatal("request succeeded with no server")
		}
		if _, ok := errors.AsType[*api.Error](err); ok {
			t.Errorf("error %v is an *api.Error, want a transport error", err)
		}
		if !strings.Contains(err.Error(), "no endpoint answered") {
			t.Errorf("error %q does not say that no endpoint answered", err)
		}
	})
	t.Run("TLSHandshakeFailure", func(t *testing.T) {
		// The client does not trust the first server's certificate.
		untrusted := MustFakeServer(t, key, ok, withUntrustedCertificate(t))
		good := MustFakeServer(t, key, ok)
		c := MustClient(t, key, []*fakeServer{good}, untrusted.URL, good.URL)
		if _, err := c.Version(MustContext(t)); err != nil {
			t.Fatal(err)
		}
		if untrusted.Hits() != 0 || good.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 0, 1", untrusted.Hits(), good.Hits())
		}
	})
	t.Run("ClientErrorIsFinal", func(t *testing.T) {
		first := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) { writeError(w, api.ErrKeyNotFound) })
		second := MustFakeServer(t, key, ok)
		c := MustClient(t, key, []*fakeServer{first, second}, first.URL, second.URL)
		if _, err := c.DescribeKey(MustContext(t), "k"); !errors.Is(err, api.ErrKeyNotFound) {
			t.Fatalf("error = %v, want ErrKeyNotFound", err)
		}
		if first.Hits() != 1 || second.Hits() != 0 {
			t.Errorf("hits = %d, %d, want 1, 0", first.Hits(), second.Hits())
		}
	})
	t.Run("ServerErrorIsFinal", func(t *testing.T) {
		first := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusInternalServerError, `{"message":"internal error"}`)
		})
		second := MustFakeServer(t, key, ok)
		c := MustClient(t, key, []*fakeServer{first, second}, first.URL, second.URL)
		if _, err := c.Version(MustContext(t)); err == nil || err.Error() != "internal error" {
			t.Fatalf("error = %v, want internal error", err)
		}
		if second.Hits() != 0 {
			t.Errorf("second endpoint got %d requests, want 0", second.Hits())
		}
	})
	t.Run("UnavailableFailsOver", func(t *testing.T) {
		var bodies []string
		unavailable := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, `{"message":"no leader"}`)
		})
		good := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies = append(bodies, string(b))
			writeJSON(w, http.StatusOK, `{"ciphertext":"AQ=="}`)
		})
		c := MustClient(t, key, []*fakeServer{unavailable, good}, unavailable.URL, good.URL)
		for i := range 2 {
			if _, err := c.Encrypt(MustContext(t), "k", []byte("x"), nil); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		// The second request goes straight to the endpoint that answered.
		if unavailable.Hits() != 1 || good.Hits() != 2 {
			t.Errorf("hits = %d, %d, want 1, 2", unavailable.Hits(), good.Hits())
		}
		// The body is sent again in full to the next endpoint.
		for _, b := range bodies {
			checkJSONBody(t, []byte(b), `{"plaintext":"eA=="}`)
		}
	})
	t.Run("LastUnavailableIsFinal", func(t *testing.T) {
		unavailable := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, `{"message":"no leader"}`)
		})
		c := MustClient(t, key, []*fakeServer{unavailable}, closedAddress(t), unavailable.URL)
		_, err := c.Version(MustContext(t))
		if apiErr, ok := errors.AsType[*api.Error](err); !ok || apiErr.Status != http.StatusServiceUnavailable {
			t.Fatalf("error = %v, want the 503 answer", err)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		release := make(chan struct{})
		hung := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			// Never answer: drop the connection.
			panic(http.ErrAbortHandler)
		})
		t.Cleanup(func() { close(release) })
		good := MustFakeServer(t, key, ok)
		pool := newPool(hung, good)
		c, err := api.NewClient(api.Config{
			Endpoints: []string{hung.URL, good.URL}, APIKey: key, RootCAs: pool, Timeout: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		if _, err := c.Version(MustContext(t)); err != nil {
			t.Fatal(err)
		}
		if hung.Hits() != 1 || good.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 1, 1", hung.Hits(), good.Hits())
		}
	})
	// Rotating twice adds two versions: a rotation that may have reached a
	// node is never sent to the next one.
	rotated := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, `{"version":2}`) }
	t.Run("RotateNotResentAfterDroppedConnection", func(t *testing.T) {
		// The node got the request, maybe applied it, then the connection broke.
		dropped := MustFakeServer(t, key, func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		good := MustFakeServer(t, key, rotated)
		c := MustClient(t, key, []*fakeServer{dropped, good}, dropped.URL, good.URL)
		_, err := c.Enclave("e").RotateKey(MustContext(t), "k")
		if err == nil || !strings.Contains(err.Error(), "may have been applied") {
			t.Fatalf("error = %v, want one that says the rotation may have been applied", err)
		}
		if dropped.Hits() != 1 || good.Hits() != 0 {
			t.Errorf("hits = %d, %d, want 1, 0", dropped.Hits(), good.Hits())
		}
	})
	t.Run("RotateNotResentAfterUnavailable", func(t *testing.T) {
		unavailable := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, `{"message":"request timed out"}`)
		})
		good := MustFakeServer(t, key, rotated)
		c := MustClient(t, key, []*fakeServer{unavailable, good}, unavailable.URL, good.URL)
		_, err := c.Enclave("e").RotateKey(MustContext(t), "k")
		if apiErr, ok := errors.AsType[*api.Error](err); !ok || apiErr.Status != http.StatusServiceUnavailable {
			t.Fatalf("error = %v, want the 503 answer", err)
		}
		if good.Hits() != 0 {
			t.Errorf("second endpoint got %d requests, want 0", good.Hits())
		}
	})
	t.Run("RotateFailsOverWhenNotSent", func(t *testing.T) {
		untrusted := MustFakeServer(t, key, rotated, withUntrustedCertificate(t))
		good := MustFakeServer(t, key, rotated)
		c := MustClient(t, key, []*fakeServer{good}, closedAddress(t), untrusted.URL, good.URL)
		v, err := c.Enclave("e").RotateKey(MustContext(t), "k")
		if err != nil || v.Version != 2 {
			t.Fatalf("RotateKey = %v, %v, want version 2 from the good endpoint", v, err)
		}
		if untrusted.Hits() != 0 || good.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 0, 1", untrusted.Hits(), good.Hits())
		}
	})
	t.Run("DroppedConnectionFailsOver", func(t *testing.T) {
		// An encryption can be sent again: doing it twice does no harm.
		dropped := MustFakeServer(t, key, func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
		good := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, `{"ciphertext":"AQ=="}`)
		})
		c := MustClient(t, key, []*fakeServer{dropped, good}, dropped.URL, good.URL)
		if _, err := c.Encrypt(MustContext(t), "k", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if dropped.Hits() != 1 || good.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 1, 1", dropped.Hits(), good.Hits())
		}
	})
	t.Run("RedirectNotFollowed", func(t *testing.T) {
		elsewhere := MustFakeServer(t, key, ok)
		redirect := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
		})
		c := MustClient(t, key, []*fakeServer{redirect, elsewhere}, redirect.URL)
		_, err := c.Encrypt(MustContext(t), "k", []byte("plaintext"), nil)
		if apiErr, ok := errors.AsType[*api.Error](err); !ok || apiErr.Status != http.StatusTemporaryRedirect {
			t.Fatalf("error = %v, want the 307 answer as an *api.Error", err)
		}
		if elsewhere.Hits() != 0 {
			t.Errorf("the redirect was followed: the plaintext went elsewhere")
		}
	})
	t.Run("CanceledDoesNotFailOver", func(t *testing.T) {
		good := MustFakeServer(t, key, ok)
		c := MustClient(t, key, []*fakeServer{good}, closedAddress(t), good.URL)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.Version(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		if good.Hits() != 0 {
			t.Errorf("good endpoint got %d requests, want 0", good.Hits())
		}
	})
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []string
	}{
		{"None", nil},
		{"Empty", []string{" "}},
		{"Scheme", []string{"ftp://127.0.0.1:7373"}},
		{"NoHost", []string{"https://"}},
		{"Query", []string{"https://127.0.0.1:7373/?x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := api.NewClient(api.Config{Endpoints: tt.endpoints}); err == nil {
				t.Errorf("NewClient(%q) succeeded, want an error", tt.endpoints)
			}
		})
	}
	t.Run("Normalized", func(t *testing.T) {
		c, err := api.NewClient(api.Config{Endpoints: []string{"127.0.0.1:7373", "https://localhost:7373/"}})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"https://127.0.0.1:7373", "https://localhost:7373"}
		if got := c.Endpoints(); !reflect.DeepEqual(got, want) {
			t.Errorf("Endpoints() = %q, want %q", got, want)
		}
	})
}
