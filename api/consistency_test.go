package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// MustConsistentClient is MustClient with Config.ConsistentReads set as
// given.
func MustConsistentClient(tb testing.TB, key *api.APIKey, consistent bool, servers []*fakeServer, endpoints ...string) *api.Client {
	tb.Helper()
	c, err := api.NewClient(api.Config{
		Endpoints: endpoints, APIKey: key, RootCAs: newPool(servers...), Timeout: 10 * time.Second,
		ConsistentReads: consistent,
	})
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func TestConsistentReads(t *testing.T) {
	key := MustGenerateAPIKey(t)
	modes := []struct {
		name   string
		config bool                // Config.ConsistentReads
		ctx    func() (bool, bool) // WithConsistentReads: value, set
		want   bool                // describes and lists are consistent
	}{
		{"Default", false, func() (bool, bool) { return false, false }, false},
		{"Config", true, func() (bool, bool) { return false, false }, true},
		{"Context", false, func() (bool, bool) { return true, true }, true},
		{"ContextOverridesConfig", true, func() (bool, bool) { return false, true }, false},
		{"ContextFalse", false, func() (bool, bool) { return false, true }, false},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			for _, tt := range sdkCalls {
				t.Run(tt.name, func(t *testing.T) {
					var query []string
					srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
						query = r.URL.Query()["consistent"]
						answerOK(w, r)
					})
					c := MustConsistentClient(t, key, m.config, []*fakeServer{srv}, srv.URL)
					ctx := MustContext(t)
					if v, set := m.ctx(); set {
						ctx = api.WithConsistentReads(ctx, v)
					}
					if err := tt.call(ctx, c); err != nil {
						t.Fatal(err)
					}
					want := m.want && tt.kind == stateRead
					switch {
					case want && (len(query) != 1 || query[0] != "true"):
						t.Errorf("consistent = %q, want [true]", query)
					case !want && query != nil:
						t.Errorf("consistent = %q, want none on a %s", query, tt.kind)
					}
				})
			}
		})
	}

	t.Run("KeepsQuery", func(t *testing.T) {
		tests := []struct {
			name string
			call func(context.Context, *api.Client) error
			want string // escaped path with query
		}{
			{"ListKeysAll", func(ctx context.Context, c *api.Client) error {
				_, err := c.ListKeys(ctx, "", "", 0)
				return err
			}, "/v1/key/list/*?consistent=true"},
			{"ListKeysPage", func(ctx context.Context, c *api.Client) error {
				_, err := c.ListKeys(ctx, "app-", "app-c", 2)
				return err
			}, "/v1/key/list/app-?continue=app-c&limit=2&consistent=true"},
			{"EnclaveListIdentities", func(ctx context.Context, c *api.Client) error {
				_, err := c.Enclave("t1").ListIdentities(ctx, "h1:", "", 5)
				return err
			}, "/v1/enclaves/t1/identities?limit=5&prefix=h1%3A&consistent=true"},
			{"DescribeKeyEscaped", func(ctx context.Context, c *api.Client) error {
				_, err := c.DescribeKey(ctx, "a b?c")
				return err
			}, "/v1/key/describe/a%20b%3Fc?consistent=true"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got string
				srv := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
					got = r.URL.EscapedPath() + "?" + r.URL.RawQuery
					answerOK(w, r)
				})
				c := MustConsistentClient(t, key, true, []*fakeServer{srv}, srv.URL)
				if err := tt.call(MustContext(t), c); err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("path = %s, want %s", got, tt.want)
				}
			})
		}
	})

	// A node that cannot reach the leader answers a consistent read with
	// "no leader: …": the read moves on to the next endpoint, and only
	// when no endpoint can serve it does the caller see ErrNoLeader.
	noLeader := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable,
			`{"message":"no leader: a consistent read needs the leader, which this node cannot reach now"}`)
	}
	t.Run("NoLeaderFailsOver", func(t *testing.T) {
		cutOff := MustFakeServer(t, key, noLeader)
		good := MustFakeServer(t, key, answerOK)
		c := MustConsistentClient(t, key, true, []*fakeServer{cutOff, good}, cutOff.URL, good.URL)
		if _, err := c.DescribeKey(MustContext(t), "k"); err != nil {
			t.Fatal(err)
		}
		if cutOff.Hits() != 1 || good.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 1, 1", cutOff.Hits(), good.Hits())
		}
	})
	t.Run("NoLeaderAnywhere", func(t *testing.T) {
		first := MustFakeServer(t, key, noLeader)
		second := MustFakeServer(t, key, noLeader)
		c := MustConsistentClient(t, key, true, []*fakeServer{first, second}, first.URL, second.URL)
		_, err := c.Enclave("e").ListKeys(MustContext(t), "", "", 0)
		if !errors.Is(err, api.ErrNoLeader) {
			t.Fatalf("error = %v, want ErrNoLeader", err)
		}
		if first.Hits() != 1 || second.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 1, 1", first.Hits(), second.Hits())
		}
	})
}
