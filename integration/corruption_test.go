package integration_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDamagedStateFileAfterCrash: a node killed with SIGKILL whose state
// file then has damaged pages. At the next start it checks the file (in a
// process of its own: bbolt's checker may crash on the damage), refuses to
// start naming the file and the remedy, changes nothing, and does not crash
// loop; `minkms admin check` says the same offline; with the damaged file
// moved aside, the node rebuilds the state from its raft log.
func TestDamagedStateFileAfterCrash(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := ctxT(t)
	c := n.Client(n.AdminKey)
	mustCreateKeys(t, c, "crash", 200)
	ct, err := c.Encrypt(ctx, "crash-7", []byte("survives"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Signal(syscall.SIGKILL)
	if exited, _ := n.Exited(10 * time.Second); !exited {
		t.Fatal("the node did not die")
	}
	state := filepath.Join(n.DataDir, "state.db")
	f, err := os.OpenFile(state, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 3*4096), 3*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	damaged, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}

	n.Start()
	if exited, err := n.Exited(30 * time.Second); !exited || err == nil {
		t.Fatalf("the node started on a damaged state file (exited %v, %v)", exited, err)
	}
	log := n.Log.String()
	for _, w := range []string{"damaged state file", state, "move", "raft log"} {
		if !strings.Contains(log, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, log)
		}
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(after, damaged) {
		t.Error("the refused start changed the state file")
	}

	res := runCLI(t, os.Environ(), "admin", "check", n.DataDir)
	if res.Code != 1 || !strings.Contains(res.Stdout, "DAMAGED  "+state) {
		t.Errorf("admin check = exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	if err := os.Rename(state, state+".damaged"); err != nil {
		t.Fatal(err)
	}
	n.MustStart()
	got, err := n.Client(n.AdminKey).Decrypt(ctx, "crash-7", ct, nil)
	if err != nil || string(got) != "survives" {
		t.Fatalf("decrypt after rebuilding = %q, %v", got, err)
	}
	if res := runCLI(t, os.Environ(), "admin", "check", "--file", state+".damaged"); res.Code != 1 {
		t.Errorf("admin check --file of the damaged copy = exit %d", res.Code)
	}
}

// TestDamagedSnapshotMeta: a garbled meta.json of a raft snapshot made
// raft panic at start; now the node names the snapshot and the remedy.
func TestDamagedSnapshotMeta(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	mustCreateKeys(t, n.Client(n.AdminKey), "snap", 1100)
	n.Stop() // a graceful stop after more than 1024 entries takes a snapshot
	metas, _ := filepath.Glob(filepath.Join(n.DataDir, "raft", "snapshots", "*", "meta.json"))
	if len(metas) == 0 {
		t.Fatal("no snapshot to damage")
	}
	if err := os.WriteFile(metas[0], []byte(`{"Version":1,"ID":`), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Start()
	if exited, err := n.Exited(30 * time.Second); !exited || err == nil {
		t.Fatalf("the node started with a damaged snapshot (exited %v, %v)", exited, err)
	}
	log := n.Log.String()
	for _, w := range []string{"damaged meta.json", filepath.Dir(metas[0]), "move"} {
		if !strings.Contains(log, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, log)
		}
	}
	if strings.Contains(log, "panic") {
		t.Errorf("the node panicked:\n%s", log)
	}
	if res := runCLI(t, os.Environ(), "admin", "check", n.DataDir); res.Code != 1 || !strings.Contains(res.Stdout, "DAMAGED  "+metas[0]) {
		t.Errorf("admin check = exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestCleanStopSkipsStateCheck: a node stopped with SIGTERM removes its
// node.running marker, so its next start does not check the state file
// (a check that reads the whole file, in a process of its own); the
// closing errors it collects were nil, and a nil counted as an error left
// the marker behind on every clean stop.
func TestCleanStopSkipsStateCheck(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	mustCreateKeys(t, n.Client(n.AdminKey), "clean", 10)
	n.Stop()
	if _, err := os.Stat(filepath.Join(n.DataDir, "node.running")); !os.IsNotExist(err) {
		t.Errorf("after a clean stop node.running is still there (%v)", err)
	}
	n.MustStart() // a new log
	if line := LogLine(n.Log.String(), "did not stop cleanly"); line != "" {
		t.Errorf("the start after a clean stop checked the state file: %s", line)
	}
}
