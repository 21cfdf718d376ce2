package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWorkers: HTTP/2 requests run on the workers, HTTP/1.1 requests
// where they are; a request that finds every worker busy runs on its own
// goroutine at once instead of waiting; a panic reaches net/http on the
// request's goroutine (ErrAbortHandler aborts the stream as it would
// without workers); Close stops them.
func TestWorkers(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	onWorker := map[string]bool{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		onWorker[r.URL.Path] = isWorkerGoroutine()
		mu.Unlock()
		switch r.URL.Path {
		case "/block":
			<-release
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok "+r.Proto)
	})
	p := newWorkers(next, 1)
	srv := httptest.NewUnstartedServer(p)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	h2 := srv.Client()

	get := func(c *http.Client, path string) (string, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(h2, "/a"); err != nil || body != "ok HTTP/2.0" {
		t.Fatalf("GET /a over HTTP/2 = %q, %v", body, err)
	}

	// The only worker blocks; the next request must not wait for it.
	blocked := make(chan error, 1)
	go func() { _, err := get(h2, "/block"); blocked <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		_, started := onWorker["/block"]
		mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/block never started")
		}
		time.Sleep(time.Millisecond)
	}
	if body, err := get(h2, "/b"); err != nil || body != "ok HTTP/2.0" {
		t.Fatalf("GET /b while the worker is busy = %q, %v", body, err)
	}
	close(release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}

	if _, err := get(h2, "/abort"); err == nil {
		t.Error("a handler that panicked with ErrAbortHandler: the request succeeded, want a reset stream")
	}
	if body, err := get(h2, "/c"); err != nil || body != "ok HTTP/2.0" {
		t.Fatalf("GET /c after the abort = %q, %v (the worker must survive a panic)", body, err)
	}

	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: h2.Transport.(*http.Transport).TLSClientConfig.Clone()}}
	h1.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	if body, err := get(h1, "/d"); err != nil || body != "ok HTTP/1.1" {
		t.Fatalf("GET /d over HTTP/1.1 = %q, %v", body, err)
	}

	mu.Lock()
	want := map[string]bool{"/a": true, "/block": true, "/b": false, "/abort": true, "/c": true, "/d": false}
	for path, w := range want {
		if onWorker[path] != w {
			t.Errorf("%s ran on a worker: %v, want %v", path, onWorker[path], w)
		}
	}
	mu.Unlock()

	srv.Close()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

// isWorkerGoroutine reports whether the calling goroutine is one of the
// workers: its stack has workers.work in it.
func isWorkerGoroutine() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "(*workers).work")
}
