package cluster_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage"
)

// TestVerifyRootKey checks a root key against the raft log and, once there
// is one, against the newest snapshot, reading only.
func TestVerifyRootKey(t *testing.T) {
	wrong := bytes.Repeat([]byte{9}, storage.RootKeySize)
	verifier := func(key []byte) cluster.RootKeyVerifier {
		return cluster.RootKeyVerifier{
			Sealed:    func(b, n string, sealed []byte) error { return storage.VerifySealed(key, b, n, sealed) },
			StateFile: func(p string) error { return storage.VerifyFile(key, p) },
		}
	}
	dir := t.TempDir()
	if err := cluster.VerifyRootKey(dir, verifier(wrong)); err != nil {
		t.Fatalf("no raft state: %v, want nil", err)
	}
	store := MustStore(t, dir)
	n := MustNode(t, dir, store, nil)
	MustPropose(t, n, put("k", "v"))
	n.Close()
	for name, tc := range map[string]struct {
		key  []byte
		want error
	}{"Right": {testRootKey, nil}, "Wrong": {wrong, storage.ErrWrongRootKey}} {
		t.Run("Log"+name, func(t *testing.T) {
			if err := cluster.VerifyRootKey(dir, verifier(tc.key)); !errors.Is(err, tc.want) {
				t.Errorf("VerifyRootKey = %v, want %v", err, tc.want)
			}
		})
	}
	store.Close()
	store = MustStore(t, dir)
	n = MustNode(t, dir, store, nil)
	MustPropose(t, n, put("k2", "v"))
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	n.Close()
	for name, tc := range map[string]struct {
		key  []byte
		want error
	}{"Right": {testRootKey, nil}, "Wrong": {wrong, storage.ErrWrongRootKey}} {
		t.Run("Snapshot"+name, func(t *testing.T) {
			if err := cluster.VerifyRootKey(dir, verifier(tc.key)); !errors.Is(err, tc.want) {
				t.Errorf("VerifyRootKey = %v, want %v", err, tc.want)
			}
		})
	}
}
