package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// mustBaselines starts n baseline handlers over mutual TLS that count the
// key operations they answer, and points the CLI at all of them.
func mustBaselines(t *testing.T, n int) []*atomic.Int64 {
	t.Helper()
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	var urls, pems []string
	counts := make([]*atomic.Int64, n)
	h := baselineHandler()
	for i := range n {
		counts[i] = new(atomic.Int64)
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counts[i].Add(1)
			h.ServeHTTP(w, r)
		}))
		s.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
		s.StartTLS()
		t.Cleanup(s.Close)
		urls = append(urls, s.URL)
		pems = append(pems, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})))
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, []byte(strings.Join(pems, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	setEnv(t, map[string]string{envServer: strings.Join(urls, ","), envAPIKey: key.String(), envCACert: caFile})
	return counts
}

func TestBenchSpreadsOverEndpoints(t *testing.T) {
	counts := mustBaselines(t, 3)
	stdout, stderr, code := runCLI(t, "", "bench", "--op", "generate,encrypt,decrypt,hmac,create",
		"--concurrency", "6", "--requests", "300", "--warmup", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var report benchReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(report.Results) != 5 || len(report.Endpoints) != 3 || report.Concurrency != 6 {
		t.Fatalf("report %+v", report)
	}
	for i, r := range report.Results {
		if r.Op != []string{"generate", "encrypt", "decrypt", "hmac", "create"}[i] || r.Requests != 300 || r.Errors != 0 || r.OpsPerSec <= 0 {
			t.Errorf("result %d: %+v", i, r)
		}
		l := r.LatencyMS
		if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Errorf("%s: latencies out of order: %+v", r.Op, l)
		}
	}
	// 5 × 300 requests by 6 clients, client i starting at endpoint i mod 3:
	// 500 each, and the setup (16 keys, 16 encrypts for decrypt) on the
	// first.
	for i, c := range counts {
		want := int64(500)
		if i == 0 {
			want += 32
		}
		if n := c.Load(); n != want {
			t.Errorf("endpoint %d answered %d requests, want %d (spread evenly)", i, n, want)
		}
	}
	if stderr != "" {
		t.Errorf("progress on a non-terminal stderr: %q", stderr)
	}
}

func TestBenchTable(t *testing.T) {
	mustBaselines(t, 1)
	stdout, stderr, code := runCLI(t, "", "bench", "--op", "encrypt", "-c", "2", "--duration", "200ms", "--warmup", "50ms", "--size", "64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "OP REQUESTS ERRORS OPS/S P50 P90 P99 P99.9 MAX" ||
		!strings.HasPrefix(lines[1], "encrypt ") {
		t.Fatalf("table:\n%s", stdout)
	}
}

func TestBenchFlags(t *testing.T) {
	mustBaselines(t, 1)
	for _, tc := range []struct{ args, want string }{
		{"--op rewrite", `unknown operation "rewrite"`},
		{"--concurrency 0", "--concurrency must be at least 1"},
		{"--identity root", `"root" is neither admin nor user`},
		{"--size 0", "--size must be between"},
		{"--keys 0", "--keys must be at least 1"},
		{"--duration 0", "--duration must be positive"},
		{"--batch 0", "--batch must be between 1 and 1000"},
		{"--batch 1001", "--batch must be between 1 and 1000"},
		{"--op create --batch 10", "create cannot be batched"},
	} {
		_, stderr, code := runCLI(t, "", append([]string{"bench"}, strings.Fields(tc.args)...)...)
		if code != exitLocal || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %q; want %d and %q", tc.args, code, stderr, exitLocal, tc.want)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := processCPU([]int{os.Getpid()})
	if err != nil {
		if runtime.GOOS == "linux" {
			t.Fatal(err)
		}
		t.Skipf("no /proc on this platform: %v", err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := processCPU([]int{os.Getpid(), os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0] != after[1] && after[1]-after[0] > 50*time.Millisecond {
		t.Fatalf("CPU times of the same process twice: %v", after)
	}
	if after[0] < before[0]+100*time.Millisecond {
		t.Errorf("CPU time %v then %v, after 300ms of work", before[0], after[0])
	}
	if _, err := processCPU([]int{-1}); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// lockedBuffer is a bytes.Buffer safe for the progress goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBenchProgress: the progress line is redrawn in place with the rate,
// the errors and the p99 so far, and cleared at the end; errors are
// counted and the first one kept; the progress goes to a terminal only.
func TestBenchProgress(t *testing.T) {
	b := &benchRun{opts: benchOptions{duration: 400 * time.Millisecond, progress: 20 * time.Millisecond}, keys: []string{"k"}}
	for i := range 4 {
		b.workers = append(b.workers, &benchWorker{id: i})
	}
	op := &benchOp{name: "fake", do: func(ctx context.Context, _ *benchRun, _ *benchWorker, seq uint64) error {
		time.Sleep(time.Millisecond)
		if seq%10 == 0 {
			return errors.New("refused")
		}
		return nil
	}}
	var progress lockedBuffer
	r := b.measure(t.Context(), op, &progress)
	if r.Errors == 0 || r.Errors*5 > r.Requests || r.FirstError != "refused" || r.OpsPerSec <= 0 {
		t.Errorf("result %+v: want about one error in ten, the first kept", r)
	}
	out := progress.String()
	lines := strings.Split(out, "\r\033[K")
	if len(lines) < 5 || !strings.HasSuffix(out, "\r\033[K") {
		t.Fatalf("progress %q: want several redraws and a cleared line at the end", out)
	}
	for _, want := range []string{"fake", " ok ", "/s", " errors", "p99 "} {
		if !strings.Contains(lines[len(lines)-2], want) {
			t.Errorf("last progress line %q lacks %q", lines[len(lines)-2], want)
		}
	}
	c := &cli{stderr: openTerminal(t)}
	if c.progressWriter() == nil {
		t.Error("no progress on a terminal")
	}
	if c := (&cli{stderr: &progress}); c.progressWriter() != nil {
		t.Error("progress on a buffer")
	}
}

// TestBenchHTTP1: --http1 sends HTTP/1.1 requests; without it the SDK's
// HTTP/2.
func TestBenchHTTP1(t *testing.T) {
	var h1, h2 atomic.Int64
	handler := baselineHandler()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			h1.Add(1)
		} else {
			h2.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	s.StartTLS()
	t.Cleanup(s.Close)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	setEnv(t, map[string]string{envServer: s.URL, envAPIKey: key.String(), envCACert: caFile})
	t.Setenv("GODEBUG", os.Getenv("GODEBUG")) // restored after the test
	args := []string{"bench", "--op", "hmac", "-c", "2", "-n", "20", "--warmup", "0", "--keys", "1"}
	if _, stderr, code := runCLI(t, "", args...); code != 0 || h1.Load() != 0 || h2.Load() == 0 {
		t.Fatalf("without --http1: exit %d (%s), %d HTTP/1.1 and %d HTTP/2 requests, want HTTP/2", code, stderr, h1.Load(), h2.Load())
	}
	h2.Store(0)
	if _, stderr, code := runCLI(t, "", append(args, "--http1")...); code != 0 || h1.Load() == 0 || h2.Load() != 0 {
		t.Fatalf("--http1: exit %d (%s), %d HTTP/1.1 and %d HTTP/2 requests, want HTTP/1.1", code, stderr, h1.Load(), h2.Load())
	}
}
