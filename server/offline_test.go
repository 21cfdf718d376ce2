package server_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/server"
)

// TestOpenOffline: the state of a stopped node opens as the node opens
// it; a running node's is refused at once, and so are a wrong root key and
// a data directory without state, where nothing is created.
func TestOpenOffline(t *testing.T) {
	n := MustStartNode(t)
	t.Run("Running", func(t *testing.T) {
		if db, err := server.OpenOffline(n.cfg); !errors.Is(err, cluster.ErrRunning) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("OpenOffline of a running node = %v, want ErrRunning", err)
		}
	})
	n.Stop()
	t.Run("Stopped", func(t *testing.T) {
		db, err := server.OpenOffline(n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if index, _ := db.Applied(); index == 0 {
			t.Error("the state of a node that ran has applied nothing")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("WrongRootKey", func(t *testing.T) {
		cfg := *n.cfg
		cfg.RootKey.Key = server.GenerateRootKey()
		if db, err := server.OpenOffline(&cfg); !errors.Is(err, server.ErrRootKey) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("OpenOffline with another root key = %v, want ErrRootKey", err)
		}
	})
	t.Run("NoState", func(t *testing.T) {
		cfg := *n.cfg
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		if _, err := server.OpenOffline(&cfg); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("OpenOffline of an empty data directory = %v, want fs.ErrNotExist", err)
		}
		if _, err := os.Stat(cfg.DataDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenOffline created %s: %v", cfg.DataDir, err)
		}
	})
}
