package integration_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// TestKeyLifecycleSDK walks an application's whole use of a key through the
// Go SDK: create, data key, encrypt with context, rotate, old ciphertexts
// still decrypt, delete.
func TestKeyLifecycleSDK(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	c := n.Client(n.AdminKey)
	ctx := ctxT(t)

	if err := c.CreateKey(ctx, "app-key"); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if err := c.CreateKey(ctx, "app-key"); !errors.Is(err, api.ErrKeyExists) {
		t.Fatalf("second CreateKey: got %v, want ErrKeyExists", err)
	}

	dek, err := c.GenerateKey(ctx, "app-key", []byte("bucket/object"))
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if len(dek.Plaintext) != 32 {
		t.Fatalf("data key is %d bytes, want 32", len(dek.Plaintext))
	}
	got, err := c.Decrypt(ctx, "app-key", dek.Ciphertext, []byte("bucket/object"))
	if err != nil || !bytes.Equal(got, dek.Plaintext) {
		t.Fatalf("Decrypt(data key) = %x, %v; want %x", got, err, dek.Plaintext)
	}

	ct, err := c.Encrypt(ctx, "app-key", []byte("secret"), []byte("ctx-1"))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if _, err := c.Decrypt(ctx, "app-key", ct, []byte("ctx-2")); !errors.Is(err, api.ErrDecrypt) {
		t.Fatalf("Decrypt with wrong context: got %v, want ErrDecrypt", err)
	}

	e := c.Enclave("default")
	if _, err := e.RotateKey(ctx, "app-key"); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	info, err := e.DescribeKey(ctx, "app-key")
	if err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	if info.Version != 2 || len(info.Versions) != 2 {
		t.Fatalf("after rotate: version %d with %d versions, want 2 and 2", info.Version, len(info.Versions))
	}
	got, err = c.Decrypt(ctx, "app-key", ct, []byte("ctx-1"))
	if err != nil || string(got) != "secret" {
		t.Fatalf("Decrypt(old ciphertext after rotate) = %q, %v", got, err)
	}
	ct2, err := c.Encrypt(ctx, "app-key", []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(ctx, "app-key", ct2, nil); err != nil || string(got) != "secret" {
		t.Fatalf("Decrypt(new ciphertext) = %q, %v", got, err)
	}

	mac1, err := c.HMAC(ctx, "app-key", []byte("message"))
	if err != nil || len(mac1) != 32 {
		t.Fatalf("HMAC = %x, %v", mac1, err)
	}

	page, err := c.ListKeys(ctx, "app", "", 0)
	if err != nil || len(page.Names) != 1 || page.Names[0] != "app-key" {
		t.Fatalf("ListKeys = %+v, %v", page, err)
	}

	if err := c.DeleteKey(ctx, "app-key"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := c.DescribeKey(ctx, "app-key"); !errors.Is(err, api.ErrKeyNotFound) {
		t.Fatalf("DescribeKey after delete: got %v, want ErrKeyNotFound", err)
	}
	if _, err := c.Decrypt(ctx, "app-key", ct, []byte("ctx-1")); !errors.Is(err, api.ErrKeyNotFound) {
		t.Fatalf("Decrypt after delete: got %v, want ErrKeyNotFound", err)
	}
}

// TestRestartKeepsState restarts a node and finds keys, policies and
// identities as they were, and old ciphertexts still decrypting.
func TestRestartKeepsState(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	c := n.Client(n.AdminKey)
	ctx := ctxT(t)
	if err := c.CreateKey(ctx, "durable"); err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, "durable", []byte("kept"), nil)
	if err != nil {
		t.Fatal(err)
	}
	user := MustAPIKey(t)
	e := c.Enclave("default")
	if _, err := e.CreatePolicy(ctx, "readers", &api.Policy{Allow: map[string][]string{"key:decrypt": {"durable"}}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateIdentity(ctx, user.Identity(), &api.CreateIdentityRequest{Policy: "readers"}); err != nil {
		t.Fatal(err)
	}

	n.Stop()
	n.MustStart()

	c = n.Client(n.AdminKey)
	if _, err := c.DescribeKey(ctx, "durable"); err != nil {
		t.Fatalf("key after restart: %v", err)
	}
	got, err := n.Client(user).Decrypt(ctx, "durable", ct, nil)
	if err != nil || string(got) != "kept" {
		t.Fatalf("user decrypt after restart = %q, %v", got, err)
	}
}

// TestWrongRootKeyRefused starts a node's data directory with another root
// key: the node refuses to start, says why, and changes nothing on disk.
func TestWrongRootKeyRefused(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	if err := n.Client(n.AdminKey).CreateKey(ctxT(t), "k"); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	before := snapshotDir(t, n.DataDir)

	other := MustNewNode(t, NodeOptions{})
	if err := os.WriteFile(filepath.Join(n.Dir, "root.key"), []byte(other.RootKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Start()
	exited, err := n.Exited(30 * time.Second)
	if !exited {
		t.Fatal("node with the wrong root key is still running")
	}
	if err == nil {
		t.Fatal("node with the wrong root key exited 0")
	}
	if !strings.Contains(strings.ToLower(n.Log.String()), "root key") {
		t.Fatalf("log does not say the root key is wrong:\n%s", n.Log.String())
	}
	after := snapshotDir(t, n.DataDir)
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed after the refused start", name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared after the refused start", name)
		}
	}
}

// TestNoKeyBytesOnDisk imports a key of known bytes and searches every file
// of the data directory (state, raft log, snapshots) for them.
func TestNoKeyBytesOnDisk(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	c := n.Client(n.AdminKey)
	ctx := ctxT(t)
	known := bytes.Repeat([]byte{0xA5, 0x5A, 0xC3, 0x3C}, 8) // 32 bytes, easy to spot
	if err := c.ImportKey(ctx, "imported", &api.ImportKeyRequest{Key: known, Cipher: "AES256"}); err != nil {
		t.Fatalf("ImportKey: %v", err)
	}
	if _, err := c.Encrypt(ctx, "imported", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	n.Stop() // flush everything
	files := snapshotDir(t, n.DataDir)
	if len(files) == 0 {
		t.Fatal("data directory is empty")
	}
	for name, data := range files {
		for _, form := range [][]byte{known, known[:16], []byte(base64.StdEncoding.EncodeToString(known)), []byte(base64.RawURLEncoding.EncodeToString(known)), []byte(hex.EncodeToString(known))} {
			if bytes.Contains(data, form) {
				t.Errorf("%s contains the key bytes (%.16s…)", name, form)
			}
		}
	}
}

func snapshotDir(tb testing.TB, dir string) map[string][]byte {
	tb.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = data
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// MustAPIKey returns a fresh API key.
func MustAPIKey(tb testing.TB) *api.APIKey {
	tb.Helper()
	k, err := api.GenerateAPIKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestLostStateFile removes a stopped node's state file, and then also the
// root key's check file, when nothing on disk but the raft log tells the
// key. Started with the wrong root key, the node refuses, saying so, and
// writes nothing (it seals nothing under that key); started with the right
// one, it rebuilds the state from the raft log.
func TestLostStateFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost []string // files of the data directory removed
		says string
	}{
		{"StateFile", []string{"state.db"}, "root key does not open the state"},
		{"StateAndCheckFile", []string{"state.db", "root-key.check"}, "wrong root key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := MustStartNode(t, NodeOptions{})
			ctx := ctxT(t)
			c := n.Client(n.AdminKey)
			if err := c.CreateKey(ctx, "survivor"); err != nil {
				t.Fatal(err)
			}
			ct, err := c.Encrypt(ctx, "survivor", []byte("rebuilt"), nil)
			if err != nil {
				t.Fatal(err)
			}
			n.Stop()
			for _, f := range tc.lost {
				if err := os.Remove(filepath.Join(n.DataDir, f)); err != nil {
					t.Fatal(err)
				}
			}
			rightKey := n.RootKey
			if err := os.WriteFile(filepath.Join(n.Dir, "root.key"), []byte(MustNewNode(t, NodeOptions{}).RootKey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			n.Start()
			if exited, err := n.Exited(30 * time.Second); !exited || err == nil {
				t.Fatalf("node without %v started with the wrong root key (exited %v, %v)", tc.lost, exited, err)
			}
			if !strings.Contains(n.Log.String(), tc.says) {
				t.Fatalf("log does not say %q:\n%s", tc.says, n.Log.String())
			}
			for _, f := range tc.lost {
				if _, err := os.Stat(filepath.Join(n.DataDir, f)); !os.IsNotExist(err) {
					t.Fatalf("the refused start wrote %s (%v)", f, err)
				}
			}
			if err := os.WriteFile(filepath.Join(n.Dir, "root.key"), []byte(rightKey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			n.MustStart()
			got, err := n.Client(n.AdminKey).Decrypt(ctx, "survivor", ct, nil)
			if err != nil || string(got) != "rebuilt" {
				t.Fatalf("decrypt after rebuilding the state from raft = %q, %v", got, err)
			}
		})
	}
}
