package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minkms/minkms/server"
	"github.com/spf13/cobra"
)

// TestJSONOnEveryDataCommand: every command that prints data takes --json;
// only those that print a confirmation and nothing else may lack it.
func TestJSONOnEveryDataCommand(t *testing.T) {
	noData := map[string]bool{
		"minkms key rm": true, "minkms enclave rm": true, "minkms identity rm": true, "minkms policy rm": true,
		"minkms cluster remove-node": true,
	}
	setEnv(t, nil)
	root := (&cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}).rootCommand()
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.Hidden || cmd.Name() == "help" {
			return
		}
		if cmd.Runnable() && cmd != root {
			has := cmd.Flags().Lookup("json") != nil
			if has == noData[cmd.CommandPath()] {
				t.Errorf("%s: --json %v, want %v", cmd.CommandPath(), has, !has)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestServerJSON(t *testing.T) {
	t.Run("NeedsDev", func(t *testing.T) {
		setEnv(t, nil)
		_, stderr, code := runCLI(t, "", "server", "--config", "/nonexistent/config.yaml", "--json")
		if code != exitLocal || !strings.HasPrefix(stderr, "minkms: --json needs --dev") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("DevInfo", func(t *testing.T) {
		var out bytes.Buffer
		c := &cli{stdout: &out}
		info := server.DevInfo{URL: "https://127.0.0.1:7373", APIKey: "k1:x", CAFile: "/tmp/ca.crt", DataDir: "/tmp/d"}
		if err := c.printDevInfo(&output{json: true}, info); err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("not one JSON document: %v\n%s", err, out.String())
		}
		want := map[string]string{"url": info.URL, "api_key": info.APIKey, "ca_file": info.CAFile}
		if len(got) != len(want) {
			t.Errorf("got %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})
}

func TestKeyImportFromFile(t *testing.T) {
	const keyB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	dir := t.TempDir()
	good := filepath.Join(dir, "good.b64")
	bad := filepath.Join(dir, "bad.b64")
	if err := os.WriteFile(good, []byte(keyB64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("Good", func(t *testing.T) {
		srv := MustFakeServer(t, map[string]answer{
			"PUT /v1/enclaves/default/keys/k/import": {200, `{"name":"k","algorithm":"AES256"}`},
		})
		stdout, stderr, code := runCLI(t, "", "key", "import", "k", "--key-file", good)
		if code != exitOK || stdout != "Imported key k (AES256)\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		reqs := srv.Requests()
		if len(reqs) != 1 || !jsonEqual(reqs[0].body, `{"key":"`+keyB64+`","cipher":"AES256"}`) {
			t.Errorf("requests %+v", reqs)
		}
	})
	t.Run("Bad", func(t *testing.T) {
		srv := MustFakeServer(t, nil)
		_, stderr, code := runCLI(t, "", "key", "import", "k", "--key-file", bad)
		if code != exitLocal || stderr != "minkms: the key is not standard base64\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}
