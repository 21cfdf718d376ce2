package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestLogsFollowResumes: a follow whose connection breaks connects again,
// sends each node's last sequence number, and prints every record once:
// none lost, none twice, even when the node sends some again.
func TestLogsFollowResumes(t *testing.T) {
	var (
		mu     sync.Mutex
		afters []string
	)
	record := func(seq uint64) string {
		b, _ := json.Marshal(api.LogRecord{Time: time.Unix(1700000000+int64(seq), 0).UTC(), Node: "n1", Seq: seq, Level: "INFO", Message: fmt.Sprintf("record %d", seq)})
		return string(b) + "\n"
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/logs" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		afters = append(afters, r.URL.Query().Get("after"))
		attempt := len(afters)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		switch attempt {
		case 1: // two records, then the connection breaks
			fmt.Fprint(w, record(1)+record(2))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default: // the node sends record 2 again, then 3, and keeps the stream open
			fmt.Fprint(w, record(2)+record(3))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	key, err := api.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	setEnv(t, map[string]string{envServer: srv.URL, envAPIKey: key.String(), envCACert: caFile})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"logs", "-f", "--json"}, strings.NewReader(""), &out, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), `"seq":3`) {
		if time.Now().After(deadline) {
			t.Fatalf("record 3 never arrived; stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after Ctrl-C, want 0", code)
	}
	for seq := 1; seq <= 3; seq++ {
		if n := strings.Count(out.String(), fmt.Sprintf(`"seq":%d,`, seq)); n != 1 {
			t.Errorf("record %d printed %d times:\n%s", seq, n, out.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(afters) < 2 || afters[0] != "" || afters[1] != "n1:2" {
		t.Errorf("after= of the requests: %q, want \"\" then \"n1:2\"", afters)
	}
	if !strings.Contains(errOut.String(), "connecting again") {
		t.Errorf("stderr does not say it reconnects:\n%s", errOut.String())
	}
}
