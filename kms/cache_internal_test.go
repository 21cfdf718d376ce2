package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/minkms/minkms/storage/kv"
)

// ringReader serves a key ring of one version for every key name.
type ringReader struct{}

func (ringReader) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	ring := keyRing{Versions: []keyVersion{{Version: 1, Algorithm: AES256, Key: bytes.Repeat([]byte{7}, KeySize)}}, Next: 2}
	b, _ := json.Marshal(ring)
	return kv.Entry{Value: b, Revision: 1, Index: 1}, nil
}

func (ringReader) List(ctx context.Context, bucket, prefix, after string, limit int) ([]string, error) {
	return nil, nil
}

// TestCacheZeroesEvicted: the key material of an evicted ring, and what
// was derived from it, is zeroed once no request uses it any more; Close
// zeroes what is left.
func TestCacheZeroesEvicted(t *testing.T) {
	svc := New(ringReader{}, nil, Options{CacheMaxEntries: 1})
	ctx := context.Background()
	material := func(name string) (*cacheEntry, []byte, []byte) {
		e, err := svc.ring(ctx, DefaultEnclave, name)
		if err != nil {
			t.Fatal(err)
		}
		vs := e.ring.newest()
		if _, err := vs.aead(format2, make([]byte, saltSize)); err != nil {
			t.Fatal(err)
		}
		if _, err := vs.hmacSubkey(); err != nil {
			t.Fatal(err)
		}
		return e, vs.v.Key, vs.prk
	}
	zero := func(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

	a, keyA, prkA := material("a")
	b, keyB, prkB := material("b") // evicts a, which a's request still holds
	if zero(keyA) || zero(prkA) {
		t.Fatal("an evicted ring was zeroed while a request used it")
	}
	a.release()
	if !zero(keyA) || !zero(prkA) || !zero(a.ring.newest().hmacKey) {
		t.Error("an evicted ring's material was not zeroed after its last use")
	}
	b.release()
	if zero(keyB) {
		t.Fatal("a cached ring was zeroed")
	}
	svc.Close()
	if !zero(keyB) || !zero(prkB) {
		t.Error("Close did not zero the cached ring")
	}
	if st := svc.Stats(); st.Evictions != 1 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want 1 eviction and no entries", st)
	}
}
