package api_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/minkms/minkms/api"
)

// cutAfterRequest reads the whole request, then closes the connection
// without an answer: the server may have acted on it.
func cutAfterRequest(tb testing.TB) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			tb.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
}

// answerOK answers 200 with a body every method decodes (a batch wants
// one result per item; the calls send one).
func answerOK(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, `{"items":[{"status":200}]}`)
}

// TestWriteRetry pins, for every method, when a request goes to the next
// endpoint. A read goes whenever the first endpoint did not answer or
// answered 503. A write goes only when it certainly was not applied: it
// never reached the endpoint, or the answer was 503 "no leader: …" or a
// 503 with Retry-After (sent again to the same endpoint). A write that was
// sent and not answered is ErrOutcomeUnknown; one answered with another
// 503 is final.
func TestWriteRetry(t *testing.T) {
	key := MustGenerateAPIKey(t)

	t.Run("CutAfterRequest", func(t *testing.T) {
		for _, tt := range sdkCalls {
			t.Run(tt.name, func(t *testing.T) {
				cut := MustFakeServer(t, key, cutAfterRequest(t))
				next := MustFakeServer(t, key, answerOK)
				c := MustClient(t, key, []*fakeServer{cut, next}, cut.URL, next.URL)
				err := tt.call(MustContext(t), c)
				if tt.kind == write {
					if !errors.Is(err, api.ErrOutcomeUnknown) {
						t.Fatalf("error = %v, want ErrOutcomeUnknown", err)
					}
					if cut.Hits() != 1 || next.Hits() != 0 {
						t.Errorf("hits = %d, %d, want 1, 0: a write that may have been applied was sent again", cut.Hits(), next.Hits())
					}
					return
				}
				if err != nil {
					t.Fatalf("%s read: %v, want the answer of the next endpoint", tt.kind, err)
				}
				if cut.Hits() != 1 || next.Hits() != 1 {
					t.Errorf("hits = %d, %d, want 1, 1", cut.Hits(), next.Hits())
				}
			})
		}
	})

	t.Run("ConnectionRefused", func(t *testing.T) {
		for _, tt := range sdkCalls {
			t.Run(tt.name, func(t *testing.T) {
				next := MustFakeServer(t, key, answerOK)
				c := MustClient(t, key, []*fakeServer{next}, closedAddress(t), next.URL)
				if err := tt.call(MustContext(t), c); err != nil {
					t.Fatalf("error = %v, want the answer of the next endpoint", err)
				}
				if next.Hits() != 1 {
					t.Errorf("next endpoint got %d requests, want 1", next.Hits())
				}
			})
		}
	})

	t.Run("NoLeader", func(t *testing.T) {
		for _, tt := range sdkCalls {
			t.Run(tt.name, func(t *testing.T) {
				noLeader := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, http.StatusServiceUnavailable, `{"message":"no leader: an election is in progress"}`)
				})
				next := MustFakeServer(t, key, answerOK)
				c := MustClient(t, key, []*fakeServer{noLeader, next}, noLeader.URL, next.URL)
				if err := tt.call(MustContext(t), c); err != nil {
					t.Fatalf("error = %v, want the answer of the next endpoint", err)
				}
				if noLeader.Hits() != 1 || next.Hits() != 1 {
					t.Errorf("hits = %d, %d, want 1, 1", noLeader.Hits(), next.Hits())
				}
			})
		}
	})

	t.Run("UnavailableWithoutRetryAfter", func(t *testing.T) {
		for _, tt := range sdkCalls {
			t.Run(tt.name, func(t *testing.T) {
				// What a node answers when a write timed out in the
				// cluster: it may yet be applied.
				timedOut := MustFakeServer(t, key, func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, http.StatusServiceUnavailable, `{"message":"request timed out"}`)
				})
				next := MustFakeServer(t, key, answerOK)
				c := MustClient(t, key, []*fakeServer{timedOut, next}, timedOut.URL, next.URL)
				err := tt.call(MustContext(t), c)
				if tt.kind == write {
					apiErr, ok := errors.AsType[*api.Error](err)
					if !ok || apiErr.Status != http.StatusServiceUnavailable || apiErr.Message != "request timed out" {
						t.Fatalf("error = %v, want the 503 answer as is", err)
					}
					if timedOut.Hits() != 1 || next.Hits() != 0 {
						t.Errorf("hits = %d, %d, want 1, 0: a write that may yet be applied was sent again", timedOut.Hits(), next.Hits())
					}
					return
				}
				if err != nil {
					t.Fatalf("%s read: %v, want the answer of the next endpoint", tt.kind, err)
				}
				if timedOut.Hits() != 1 || next.Hits() != 1 {
					t.Errorf("hits = %d, %d, want 1, 1", timedOut.Hits(), next.Hits())
				}
			})
		}
	})

	t.Run("Overloaded", func(t *testing.T) {
		for _, tt := range sdkCalls {
			t.Run(tt.name, func(t *testing.T) {
				// The server did not act on it: also a write is sent
				// again, to the same endpoint.
				busy := MustFakeServer(t, key, overloaded(1, "0", answerOK))
				next := MustFakeServer(t, key, answerOK)
				c := MustClient(t, key, []*fakeServer{busy, next}, busy.URL, next.URL)
				if err := tt.call(MustContext(t), c); err != nil {
					t.Fatalf("error = %v, want the answer after the retry", err)
				}
				if busy.Hits() != 2 || next.Hits() != 0 {
					t.Errorf("hits = %d, %d, want 2, 0", busy.Hits(), next.Hits())
				}
			})
		}
	})
}
