package integration_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlocks returns the fenced code blocks of README.md in the given language.
func readmeBlocks(tb testing.TB, lang string) []string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var blocks []string
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestReadmeExamples runs the README's first CLI example and its Go SDK
// example against a real node, so that they work as written.
func TestReadmeExamples(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	env := append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+n.URL, "MINKMS_CACERT="+n.CAFile,
		"MINKMS_API_KEY="+n.AdminKey.String(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))

	t.Run("CLI", func(t *testing.T) {
		var cli string
		for _, b := range readmeBlocks(t, "sh") {
			if strings.Contains(b, "minkms key create my-key") {
				cli = b
			}
		}
		if cli == "" {
			t.Fatal("README has no CLI example")
		}
		script := "set -euo pipefail\n" + strings.ReplaceAll(cli, "export PATH=$PWD/bin:$PATH", "")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Env, cmd.Dir = env, t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README CLI example failed: %v\n%s", err, out)
		}
		if got := strings.Count(string(out), "hello world"); got < 2 {
			t.Fatalf("README CLI example decrypted %d times, want 2:\n%s", got, out)
		}
	})

	t.Run("SDK", func(t *testing.T) {
		blocks := readmeBlocks(t, "go")
		if len(blocks) == 0 {
			t.Fatal("README has no Go example")
		}
		// Build the example inside this module, so it uses this SDK.
		modDir, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp(modDir, ".readme-example-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(blocks[0]), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "run", ".")
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README Go example failed: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "data key recovered: true") || !strings.Contains(string(out), "version 2 encrypts now") {
			t.Fatalf("README Go example printed:\n%s", out)
		}
	})
}
