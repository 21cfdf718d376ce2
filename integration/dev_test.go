package integration_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// TestDevServer starts `minkms server --dev` as `make run` does and uses
// exactly what it prints — URL, admin API key, CA file — to work with it;
// when it stops, its temporary state is gone.
func TestDevServer(t *testing.T) {
	addr := freeAddr(t)
	out := &syncBuffer{}
	cmd := exec.Command(binary, "server", "--dev", "--address", addr)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	exportRE := regexp.MustCompile(`export MINKMS_SERVER=(\S+) MINKMS_API_KEY=(\S+) MINKMS_CACERT=(\S+)`)
	var m []string
	waitFor(t, 30*time.Second, "the development node to print its export line", func() bool {
		m = exportRE.FindStringSubmatch(out.String())
		return m != nil
	})
	url, apiKey, caFile := m[1], m[2], m[3]
	if url != "https://"+addr {
		t.Fatalf("printed URL %s, want https://%s", url, addr)
	}
	if !strings.Contains(out.String(), "API key:") || !strings.Contains(out.String(), "CA file:") {
		t.Fatalf("dev output lacks the API key or CA file lines:\n%s", out.String())
	}
	env := append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+url, "MINKMS_API_KEY="+apiKey, "MINKMS_CACERT="+caFile)
	var res CLIResult
	waitFor(t, 30*time.Second, "the development node to accept a key", func() bool {
		res = runCLI(t, env, "key", "create", "dev-key")
		return res.Code == 0
	})
	ct := strings.TrimSpace(runCLI(t, env, "key", "encrypt", "dev-key", "hi").Stdout)
	if got := runCLI(t, env, "key", "decrypt", "dev-key", ct); got.Code != 0 || strings.TrimSpace(got.Stdout) != "hi" {
		t.Fatalf("decrypt on the dev node: %+v", got)
	}
	if _, err := api.ParseAPIKey(apiKey); err != nil {
		t.Fatalf("printed API key does not parse: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev node exited with %v after SIGINT\n%s", err, out.String())
		}
		done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("dev node did not stop on SIGINT")
	}
	if _, err := os.Stat(caFile); !os.IsNotExist(err) {
		t.Fatalf("dev node left its temporary directory behind (%s: %v)", caFile, err)
	}
}
