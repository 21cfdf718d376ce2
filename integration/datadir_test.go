package integration_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDataDirPrivate: everything under data_dir is private to the node's
// user (0700 directories, 0600 files), the raft snapshots included, which
// raft creates with fixed modes of its own. A graceful stop after more than
// 1024 entries takes a snapshot.
func TestDataDirPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no umask")
	}
	n := MustStartNode(t, NodeOptions{})
	c := n.Client(n.AdminKey)
	ctx := ctxT(t)
	const keys = 1100
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= keys; i = next.Add(1) {
				if err := c.CreateKey(ctx, fmt.Sprintf("k-%d", i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CreateKey: %v", err)
	}
	n.Stop()
	if LogLine(n.Log.String(), "Took a snapshot before stopping") == "" {
		t.Fatalf("no snapshot at the stop:\n%s", n.Log.String())
	}

	var snapshots int
	err := filepath.WalkDir(n.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(n.DataDir, path)
		if strings.Contains(rel, "snapshots"+string(filepath.Separator)) && d.Name() == "meta.json" {
			snapshots++
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if perm := info.Mode().Perm(); perm&^want != 0 {
			t.Errorf("%s: mode %04o, want at most %04o", rel, perm, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if snapshots == 0 {
		t.Fatal("no raft snapshot under data_dir: the test checked nothing of raft's own files")
	}
	if info, err := os.Stat(n.DataDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data_dir: %v, %v; want mode 0700", info.Mode(), err)
	}
}
