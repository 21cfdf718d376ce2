package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// stallServer serves handler behind a stall guard that cuts reads after
// two ticks and writes after four, over HTTP/2 or HTTP/1.1. The test
// advances the guard with sweep, so nothing depends on the clock.
func stallServer(t *testing.T, http2 bool, handler http.HandlerFunc) (*httptest.Server, *stallGuard) {
	t.Helper()
	g := newStallGuard(2*time.Second, 4*time.Second, time.Second, slog.New(slog.DiscardHandler))
	srv := httptest.NewUnstartedServer(withRequest(handler, nil, g))
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, g
}

// startStalledPost sends a POST to srv whose body begins with first and
// then waits for more; writing to or closing the returned pipe goes on.
func startStalledPost(t *testing.T, srv *httptest.Server, first string) *io.PipeWriter {
	t.Helper()
	body, feed := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, srv.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := feed.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	return feed
}

// sweepUntil sweeps g until done yields a value, at most max times, and
// returns the value and how many sweeps it took.
func sweepUntil[T any](t *testing.T, g *stallGuard, done <-chan T, max int) (T, int) {
	t.Helper()
	for n := 0; ; n++ {
		select {
		case v := <-done:
			return v, n
		default:
		}
		if n == max {
			var zero T
			select {
			case v := <-done:
				return v, n
			case <-time.After(10 * time.Second):
				t.Fatalf("nothing after %d sweeps", n)
				return zero, n
			}
		}
		g.sweep()
	}
}

// forProtocols runs test over HTTP/2 and over HTTP/1.1.
func forProtocols(t *testing.T, test func(t *testing.T, http2 bool)) {
	t.Run("HTTP/2", func(t *testing.T) { test(t, true) })
	t.Run("HTTP/1.1", func(t *testing.T) { test(t, false) })
}

// mustCutAt sweeps g until the handler reports on done, checks that this
// took sweeps sweeps, that the request then left the guard and that one
// cut of dir was counted, and returns what the handler reported.
func mustCutAt(t *testing.T, g *stallGuard, done <-chan error, sweeps int, dir string) error {
	t.Helper()
	err, n := sweepUntil(t, g, done, sweeps)
	if n != sweeps {
		t.Fatalf("the handler ended after %d sweeps, want %d: %v", n, sweeps, err)
	}
	waitInFlight(t, g, 0)
	if n := cutsCounted(t, g, dir); n != 1 {
		t.Fatalf("%v %s cuts counted, want 1", n, dir)
	}
	return err
}

// waitInFlight waits until g watches n requests.
func waitInFlight(t *testing.T, g *stallGuard, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.inFlight() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight, want %d", g.inFlight(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A client that sends part of a body and then nothing has its request's
// body reads fail once the read timeout has passed, not before; the
// request then ends and leaves the guard.
func TestStallGuardCutsSlowBody(t *testing.T) {
	forProtocols(t, func(t *testing.T, http2 bool) {
		readErr := make(chan error, 1)
		srv, g := stallServer(t, http2, func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			readErr <- err
		})
		feed := startStalledPost(t, srv, `{"context":`)
		defer feed.Close()
		waitInFlight(t, g, 1)

		// Two ticks of read time: cut on the third sweep.
		if err := mustCutAt(t, g, readErr, 3, "read"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("body read: %v, want a deadline error", err)
		}
	})
}

// A client that reads no answer has the handler's writes fail once the
// write timeout has passed.
func TestStallGuardCutsStalledWrite(t *testing.T) {
	forProtocols(t, func(t *testing.T, http2 bool) {
		writeErr := make(chan error, 1)
		srv, g := stallServer(t, http2, func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			rc := http.NewResponseController(w)
			for total := 0; total < 1<<30; total += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					writeErr <- err
					return
				}
				if err := rc.Flush(); err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		})
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() // read nothing
		// Four ticks of write time: cut on the fifth sweep.
		if err := mustCutAt(t, g, writeErr, 5, "write"); err == nil {
			t.Fatal("the handler wrote 1 GiB to a client that reads nothing")
		}
	})
}

// A handler that sets its deadlines itself, as a log stream does, is not
// cut by the guard, however long it runs; quick requests are never cut.
func TestStallGuardLeavesOwnDeadlines(t *testing.T) {
	forProtocols(t, func(t *testing.T, http2 bool) {
		readErr := make(chan error, 1)
		srv, g := stallServer(t, http2, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/quick" {
				w.Write([]byte("ok"))
				return
			}
			// Through the writers the routes' middleware add.
			w = &auditWriter{ResponseWriter: w}
			rc := http.NewResponseController(w)
			if err := errors.Join(rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Now().Add(time.Hour))); err != nil {
				readErr <- err
				return
			}
			_, err := io.ReadAll(r.Body)
			readErr <- err
		})
		for range 3 {
			resp, err := srv.Client().Get(srv.URL + "/quick")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		feed := startStalledPost(t, srv, "a")
		waitInFlight(t, g, 1)
		for range 10 {
			g.sweep()
		}
		select {
		case err := <-readErr:
			t.Fatalf("the read ended before the client ended the body: %v", err)
		default:
		}
		feed.Close()
		if err := <-readErr; err != nil {
			t.Fatalf("body read: %v, want the whole body", err)
		}
		waitInFlight(t, g, 0)
		for _, dir := range []string{"read", "write"} {
			if n := cutsCounted(t, g, dir); n != 0 {
				t.Fatalf("%v %s cuts counted, want none", n, dir)
			}
		}
	})
}

// cutsCounted returns the guard's counter of cuts in direction dir.
func cutsCounted(t *testing.T, g *stallGuard, dir string) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.cuts.WithLabelValues(dir).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A request whose body has been read has no reads left to cut: past the
// read timeout its context lives on (over HTTP/1.1 a read deadline would
// cancel it) and it answers as usual; a request without a body likewise.
func TestStallGuardSparesReadBodies(t *testing.T) {
	forProtocols(t, func(t *testing.T, http2 bool) {
		read, check := make(chan error, 1), make(chan struct{})
		ctxErr := make(chan error, 1)
		srv, g := stallServer(t, http2, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				_, err := readBody(r)
				read <- err
			}
			<-check
			ctxErr <- r.Context().Err()
			w.Write([]byte("ok"))
		})
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			answered := make(chan error, 1)
			go func() {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader(`{"context":"x"}`)
				}
				req, _ := http.NewRequest(method, srv.URL, body)
				resp, err := srv.Client().Do(req)
				if err == nil {
					if resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
					resp.Body.Close()
				}
				answered <- err
			}()
			if method == http.MethodPost {
				if err := <-read; err != nil {
					t.Fatalf("reading the body: %v", err)
				}
			}
			waitInFlight(t, g, 1)
			for range 3 { // past the read timeout, before the write timeout
				g.sweep()
			}
			close(check)
			if err := <-ctxErr; err != nil {
				t.Fatalf("%s: the request's context ended: %v", method, err)
			}
			if err := <-answered; err != nil {
				t.Fatalf("%s: %v", method, err)
			}
			waitInFlight(t, g, 0)
			check = make(chan struct{})
		}
		if n := cutsCounted(t, g, "read"); n != 0 {
			t.Fatalf("%v read cuts counted, want none", n)
		}
	})
}

// BenchmarkStallGuard is what the guard costs every request: joining and
// leaving its lists, from all CPUs at once.
func BenchmarkStallGuard(b *testing.B) {
	g := newStallGuard(time.Second, time.Second, time.Second, slog.New(slog.DiscardHandler))
	b.RunParallel(func(pb *testing.PB) {
		c := &requestCtx{}
		for pb.Next() {
			g.add(c)
			g.remove(c)
		}
	})
}
