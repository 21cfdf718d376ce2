package server_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestKMSCacheFollowsChanges: over the real node (raft FSM, state file), a
// key served from the cache stops being served the moment its delete
// returns, and the cache's counters are in /metrics.
func TestKMSCacheFollowsChanges(t *testing.T) {
	n := MustSharedNode(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/cache-follows", nil, nil)
	t.Cleanup(func() { n.MustDo(t, n.admin, http.MethodDelete, "/v1/key/delete/cache-follows", nil) }) // the node is shared
	for range 3 {                                                                                      // warm: the later ones are hits
		var enc api.EncryptKeyResponse
		n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/cache-follows", api.EncryptKeyRequest{Plaintext: []byte("x")}, &enc)
	}
	n.MustOK(t, n.admin, http.MethodDelete, "/v1/key/delete/cache-follows", nil, nil)
	r := n.MustDo(t, n.admin, http.MethodPut, "/v1/key/encrypt/cache-follows", api.EncryptKeyRequest{Plaintext: []byte("x")})
	if r.Status != http.StatusNotFound {
		t.Errorf("encrypt after the delete returned = %d %s, want 404", r.Status, r.Body)
	}

	m := n.MustDo(t, n.admin, http.MethodGet, "/metrics", nil)
	hits := regexp.MustCompile(`(?m)^minkms_kms_cache_lookups_total\{result="hit"\} (\S+)$`).FindSubmatch(m.Body)
	if hits == nil {
		t.Fatalf("/metrics has no minkms_kms_cache_lookups_total{result=\"hit\"}")
	}
	if v, _ := strconv.ParseFloat(string(hits[1]), 64); v < 2 {
		t.Errorf("cache hits = %s, want at least 2", hits[1])
	}
	for _, name := range []string{`minkms_kms_cache_dropped_total{reason="invalidation"}`, `minkms_kms_cache_max_entries 10000`} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name)).Match(m.Body) {
			t.Errorf("/metrics has no %s", name)
		}
	}
}
