package api_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// overloaded answers 503 "server overloaded, retry later" with the given
// Retry-After to the first n requests, and ok after that.
func overloaded(n int64, retryAfter string, ok http.HandlerFunc) http.HandlerFunc {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= n {
			w.Header().Set("Retry-After", retryAfter)
			writeError(w, api.ErrOverloaded)
			return
		}
		ok(w, r)
	}
}

func TestRetryAfter(t *testing.T) {
	key := MustGenerateAPIKey(t)
	rotated := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, `{"version":2}`) }

	t.Run("Waits", func(t *testing.T) {
		srv := MustFakeServer(t, key, overloaded(1, "1", rotated))
		other := MustFakeServer(t, key, rotated)
		c := MustClient(t, key, []*fakeServer{srv, other}, srv.URL, other.URL)
		start := time.Now()
		// A rotation too: the server did not act on an overloaded request.
		v, err := c.Enclave("e").RotateKey(MustContext(t), "k")
		elapsed := time.Since(start)
		if err != nil || v.Version != 2 {
			t.Fatalf("RotateKey = %v, %v, want version 2 after the retry", v, err)
		}
		if elapsed < 900*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("the request took %v, want about the 1s of Retry-After", elapsed)
		}
		// Sent again to the same endpoint.
		if srv.Hits() != 2 || other.Hits() != 0 {
			t.Errorf("hits = %d, %d, want 2, 0", srv.Hits(), other.Hits())
		}
	})
	t.Run("HTTPDate", func(t *testing.T) {
		// A date in the past is no delay.
		srv := MustFakeServer(t, key, overloaded(1, "Wed, 21 Oct 2015 07:28:00 GMT", rotated))
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		start := time.Now()
		if _, err := c.Enclave("e").RotateKey(MustContext(t), "k"); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("the request took %v, want no wait", elapsed)
		}
		if srv.Hits() != 2 {
			t.Errorf("hits = %d, want 2", srv.Hits())
		}
	})
	t.Run("CappedByTimeout", func(t *testing.T) {
		srv := MustFakeServer(t, key, overloaded(1, "3600", rotated))
		c, err := api.NewClient(api.Config{
			Endpoints: []string{srv.URL}, APIKey: key, RootCAs: newPool(srv), Timeout: 300 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		start := time.Now()
		if _, err := c.Enclave("e").RotateKey(MustContext(t), "k"); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("the request took %v, want about the 300ms of Config.Timeout", elapsed)
		}
	})
	t.Run("NoWaitPastDeadline", func(t *testing.T) {
		srv := MustFakeServer(t, key, overloaded(1, "10", rotated))
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		ctx, cancel := context.WithTimeout(MustContext(t), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Enclave("e").RotateKey(ctx, "k")
		if !errors.Is(err, api.ErrOverloaded) {
			t.Fatalf("error = %v, want ErrOverloaded", err)
		}
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("the request took %v, want an answer at once", elapsed)
		}
		if srv.Hits() != 1 {
			t.Errorf("hits = %d, want 1", srv.Hits())
		}
	})
	t.Run("AtMostThreeWaits", func(t *testing.T) {
		srv := MustFakeServer(t, key, overloaded(100, "0", rotated))
		c := MustClient(t, key, []*fakeServer{srv}, srv.URL)
		_, err := c.Enclave("e").RotateKey(MustContext(t), "k")
		if !errors.Is(err, api.ErrOverloaded) {
			t.Fatalf("error = %v, want ErrOverloaded", err)
		}
		if srv.Hits() != 4 {
			t.Errorf("hits = %d, want 4 (the first request and three retries)", srv.Hits())
		}
	})
	t.Run("ThenFailsOver", func(t *testing.T) {
		// Once the waits are used up, a 503 moves on as any 503 does.
		srv := MustFakeServer(t, key, overloaded(100, "0", nil))
		other := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, `{"ciphertext":"AQ=="}`)
		})
		c := MustClient(t, key, []*fakeServer{srv, other}, srv.URL, other.URL)
		if _, err := c.Encrypt(MustContext(t), "k", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if srv.Hits() != 4 || other.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 4, 1", srv.Hits(), other.Hits())
		}
	})
	t.Run("BadHeaderFailsOver", func(t *testing.T) {
		srv := MustFakeServer(t, key, overloaded(100, "soon", nil))
		other := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, `{"version":"v1"}`)
		})
		c := MustClient(t, key, []*fakeServer{srv, other}, srv.URL, other.URL)
		if _, err := c.Version(MustContext(t)); err != nil {
			t.Fatal(err)
		}
		if srv.Hits() != 1 || other.Hits() != 1 {
			t.Errorf("hits = %d, %d, want 1, 1", srv.Hits(), other.Hits())
		}
	})
}

// TestOutcomeUnknown: a write whose outcome is unknown is never sent again,
// to the same endpoint or another, and is returned as ErrOutcomeUnknown.
func TestOutcomeUnknown(t *testing.T) {
	key := MustGenerateAPIKey(t)
	calls := []struct {
		name string
		call func(context.Context, *api.Client) error
	}{
		{"CreateKey", func(ctx context.Context, c *api.Client) error { return c.CreateKey(ctx, "k") }},
		{"RotateKey", func(ctx context.Context, c *api.Client) error {
			_, err := c.Enclave("e").RotateKey(ctx, "k")
			return err
		}},
		{"AddNode", func(ctx context.Context, c *api.Client) error {
			_, err := c.AddNode(ctx, "n4.example:7374")
			return err
		}},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			unknown := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
				// Even with a Retry-After, which only a 503 honours.
				w.Header().Set("Retry-After", "0")
				writeError(w, api.ErrOutcomeUnknown)
			})
			other := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, `{}`) })
			c := MustClient(t, key, []*fakeServer{unknown, other}, unknown.URL, other.URL)
			err := tt.call(MustContext(t), c)
			if !errors.Is(err, api.ErrOutcomeUnknown) {
				t.Fatalf("error = %v, want ErrOutcomeUnknown", err)
			}
			if apiErr, _ := errors.AsType[*api.Error](err); apiErr == nil || apiErr.Status != http.StatusInternalServerError {
				t.Errorf("error = %#v, want the 500 answer as is", err)
			}
			if unknown.Hits() != 1 || other.Hits() != 0 {
				t.Errorf("hits = %d, %d, want 1, 0", unknown.Hits(), other.Hits())
			}
		})
	}
}

// TestNoLeader: every "no leader: …" answer is ErrNoLeader, whatever the
// reason after the colon, and it fails over to the next endpoint.
func TestNoLeader(t *testing.T) {
	key := MustGenerateAPIKey(t)
	noLeader := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, `{"message":"no leader: an election is in progress"}`)
	}
	first := MustFakeServer(t, key, noLeader)
	second := MustFakeServer(t, key, noLeader)
	c := MustClient(t, key, []*fakeServer{first, second}, first.URL, second.URL)
	err := c.CreateKey(MustContext(t), "k")
	if !errors.Is(err, api.ErrNoLeader) {
		t.Fatalf("error = %v, want ErrNoLeader", err)
	}
	if errors.Is(err, api.ErrOverloaded) || errors.Is(err, api.ErrOutcomeUnknown) {
		t.Errorf("error %v matches another cluster error", err)
	}
	if first.Hits() != 1 || second.Hits() != 1 {
		t.Errorf("hits = %d, %d, want 1, 1", first.Hits(), second.Hits())
	}
	for _, msg := range []string{"no leaders here", "not ready: the cluster has no leader"} {
		if e := (&api.Error{Status: http.StatusServiceUnavailable, Message: msg}); errors.Is(e, api.ErrNoLeader) {
			t.Errorf("%q matches ErrNoLeader", msg)
		}
	}
}
