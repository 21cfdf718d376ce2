package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// TestKeyRewrapCLI: after a rotation, `minkms key rewrap` turns ciphertexts
// of version 1 (base64 lines from --file, JSON lines with their contexts
// from standard input) into ciphertexts of version 2 of the same
// plaintexts, in order and in the same form, in several batches; a bad
// line stops it with the line's number.
func TestKeyRewrapCLI(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := context.Background()
	c := n.Client(n.AdminKey)
	if err := c.CreateKey(ctx, "rw"); err != nil {
		t.Fatal(err)
	}
	const count = 2500
	items := make([]api.BatchItem, 0, count)
	for i := range count {
		items = append(items, api.BatchItem{Op: api.BatchGenerate, Name: "rw", Context: []byte(fmt.Sprint("obj-", i))})
	}
	var deks []api.BatchResult
	for i := 0; i < count; i += api.MaxBatchItems {
		res, err := c.Batch(ctx, items[i:min(i+api.MaxBatchItems, count)])
		if err != nil {
			t.Fatal(err)
		}
		deks = append(deks, res...)
	}
	plainCT, err := c.Encrypt(ctx, "rw", []byte("plain"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	n.MustCLI(n.AdminKey, "key", "rotate", "rw")

	// Base64 lines from a file, bound to --context; an empty line is kept.
	file := filepath.Join(t.TempDir(), "cts.txt")
	b64 := base64.StdEncoding.EncodeToString(plainCT)
	if err := os.WriteFile(file, []byte(b64+"\n\n"+b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := strings.Split(strings.TrimSuffix(n.MustCLI(n.AdminKey, "key", "rewrap", "rw", "--file", file, "--context", "ctx"), "\n"), "\n")
	if len(out) != 3 || out[1] != "" {
		t.Fatalf("rewrap of 3 lines wrote %q", out)
	}
	for _, l := range []string{out[0], out[2]} {
		ct, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		mustVersion(t, ct, 2)
		if pt, err := c.Decrypt(ctx, "rw", ct, []byte("ctx")); err != nil || string(pt) != "plain" {
			t.Fatalf("rewrapped line decrypts to %q, %v", pt, err)
		}
	}

	var asJSON rewrapJSON
	if err := json.Unmarshal([]byte(strings.Split(n.MustCLI(n.AdminKey, "key", "rewrap", "rw", "--file", file, "--context", "ctx", "--json"), "\n")[0]), &asJSON); err != nil || string(asJSON.Context) != "ctx" {
		t.Fatalf("--json line: %+v, %v", asJSON, err)
	}
	mustVersion(t, asJSON.Ciphertext, 2)

	// JSON lines with their own contexts from standard input, 3 batches.
	var in bytes.Buffer
	for i, d := range deks {
		b, _ := json.Marshal(map[string][]byte{"ciphertext": d.Ciphertext, "context": items[i].Context})
		in.Write(append(b, '\n'))
	}
	res := cliWithStdin(t, n, &in, "key", "rewrap", "rw")
	if res.Code != 0 {
		t.Fatalf("rewrap of JSON lines: exit %d: %s", res.Code, res.Stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	i := 0
	for ; sc.Scan(); i++ {
		var l struct{ Ciphertext, Context []byte }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %d %q: %v", i+1, sc.Text(), err)
		}
		mustVersion(t, l.Ciphertext, 2)
		if !bytes.Equal(l.Context, items[i].Context) {
			t.Fatalf("line %d: context %q, want %q", i+1, l.Context, items[i].Context)
		}
		if i%500 == 0 {
			pt, err := c.Decrypt(ctx, "rw", l.Ciphertext, l.Context)
			if err != nil || !bytes.Equal(pt, deks[i].Plaintext) {
				t.Fatalf("line %d: the rewrapped data key differs: %v", i+1, err)
			}
		}
	}
	if i != count {
		t.Fatalf("%d output lines for %d input lines", i, count)
	}

	// A ciphertext with the wrong context on line 2.
	bad := strings.NewReader(b64 + "\n" + `{"ciphertext":"` + b64 + `"}` + "\n")
	if res := cliWithStdin(t, n, bad, "key", "rewrap", "rw", "--context", "ctx"); res.Code == 0 ||
		!strings.Contains(res.Stderr, "line 2: "+api.ErrDecrypt.Message) || strings.Count(res.Stdout, "\n") != 1 {
		t.Fatalf("bad line: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

func mustVersion(t *testing.T, ct []byte, version int) {
	t.Helper()
	c, err := kms.ParseCiphertext(ct)
	if err != nil || c.KeyVersion != version {
		t.Fatalf("ciphertext of version %d (%v), want %d", c.KeyVersion, err, version)
	}
}

// cliWithStdin runs the CLI as the admin with stdin.
func cliWithStdin(t *testing.T, n *Node, stdin io.Reader, args ...string) CLIResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "MINKMS_SERVER="+n.URL, "MINKMS_CACERT="+n.CAFile, "MINKMS_API_KEY="+n.AdminKey.String())
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := CLIResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return res
}

type rewrapJSON struct{ Ciphertext, Context []byte }
