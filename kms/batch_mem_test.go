package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/storage/kv"
)

// ringReads is a state that counts the reads of each key ring.
type ringReads struct {
	*kmstest.State
	mu    sync.Mutex
	reads map[string]int // key name: reads
}

func (r *ringReads) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	if strings.HasSuffix(bucket, "/keys") {
		r.mu.Lock()
		r.reads[name]++
		r.mu.Unlock()
	}
	return r.State.Get(ctx, bucket, name)
}

// take returns the reads of each key since the last take.
func (r *ringReads) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.reads
	r.reads = map[string]int{}
	return m
}

// MustRingReadsEnv is MustEnv without the cache, over a state that counts
// the reads of each key ring: every ring a batch takes is a read.
func MustRingReadsEnv(tb testing.TB) (*env, *ringReads) {
	tb.Helper()
	st := kmstest.New(tb)
	r := &ringReads{State: st, reads: map[string]int{}}
	svc := kms.New(r, st, kms.Options{
		Admins:    []kms.Identity{MustIdentity(tb, "root")},
		Now:       func() time.Time { return testNow },
		ClusterID: func() string { return testClusterID },
	})
	tb.Cleanup(svc.Close)
	if err := svc.Init(context.Background()); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	return &env{svc: svc, state: st, admin: MustCaller(tb, svc, MustIdentity(tb, "root"))}, r
}

// TestBatchHoldsFewRings: a batch holds at most kms.MaxBatchRings key rings
// at once, and one ring only while its items come one key after another;
// it still reads each ring once unless it had to let go of it, and answers
// every item in order.
func TestBatchHoldsFewRings(t *testing.T) {
	ctx := context.Background()
	e, reads := MustRingReadsEnv(t)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("k-%04d", i)
		e.MustKey(t, "default", keys[i])
	}
	hmacs := func(names ...string) []kms.BatchItem {
		items := make([]kms.BatchItem, len(names))
		for i, name := range names {
			items[i] = kms.BatchItem{Action: kms.ActionKeyHMAC, Name: name, Message: []byte("m")}
		}
		return items
	}
	// run does the batch and checks each result against HMAC; it returns
	// the most rings the batch held and the reads of each ring.
	run := func(t *testing.T, items []kms.BatchItem) (int, map[string]int) {
		t.Helper()
		reads.take()
		res, peak, err := kms.BatchPeak(e.svc, ctx, e.admin, "default", items)
		wantErr(t, err, nil)
		got := reads.take()
		for i, it := range items {
			want, err := e.svc.HMAC(ctx, e.admin, "default", it.Name, it.Message)
			wantErr(t, err, nil)
			if res[i].Err != nil || !bytes.Equal(res[i].HMAC, want) {
				t.Fatalf("item %d (%s): %v, or not the HMAC of its key", i, it.Name, res[i].Err)
			}
		}
		return peak, got
	}
	wantReads := func(t *testing.T, got map[string]int, name string, n int) {
		t.Helper()
		if got[name] != n {
			t.Errorf("key %s read %d times, want %d", name, got[name], n)
		}
	}

	t.Run("distinct keys", func(t *testing.T) {
		peak, got := run(t, hmacs(keys...))
		if peak != 1 {
			t.Errorf("a batch of %d distinct keys held %d rings at once, want 1", len(keys), peak)
		}
		for _, name := range keys {
			wantReads(t, got, name, 1)
		}
	})
	t.Run("runs of one key", func(t *testing.T) {
		var names []string
		for _, name := range keys[:100] {
			names = append(names, name, name, name)
		}
		peak, got := run(t, hmacs(names...))
		if peak != 1 {
			t.Errorf("held %d rings at once, want 1", peak)
		}
		for _, name := range keys[:100] {
			wantReads(t, got, name, 1)
		}
	})
	t.Run("within the bound", func(t *testing.T) {
		// k, then 63 other keys twice, then k: 64 rings, each read once.
		others := keys[1:kms.MaxBatchRings]
		names := append(append(append([]string{keys[0]}, others...), others...), keys[0])
		peak, got := run(t, hmacs(names...))
		if peak != kms.MaxBatchRings {
			t.Errorf("held %d rings at once, want %d", peak, kms.MaxBatchRings)
		}
		for _, name := range keys[:kms.MaxBatchRings] {
			wantReads(t, got, name, 1)
		}
	})
	t.Run("past the bound", func(t *testing.T) {
		// k, then 64 other keys twice, then k: k is the ring needed again
		// the latest, so the batch lets go of it and reads it again.
		others := keys[1 : kms.MaxBatchRings+1]
		names := append(append(append([]string{keys[0]}, others...), others...), keys[0])
		peak, got := run(t, hmacs(names...))
		if peak != kms.MaxBatchRings {
			t.Errorf("held %d rings at once, want %d", peak, kms.MaxBatchRings)
		}
		wantReads(t, got, keys[0], 2)
		for _, name := range others {
			wantReads(t, got, name, 1)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		// An error reading a ring is held as the ring would be: the key is
		// read once, and only its items fail.
		reads.take()
		res, _, err := kms.BatchPeak(e.svc, ctx, e.admin, "default", hmacs("missing", keys[0], "missing"))
		wantErr(t, err, nil)
		wantErr(t, res[0].Err, kms.ErrKeyNotFound)
		wantErr(t, res[1].Err, nil)
		wantErr(t, res[2].Err, kms.ErrKeyNotFound)
		wantReads(t, reads.take(), "missing", 1)
	})
	t.Run("interleaved", func(t *testing.T) {
		// 500 keys, all named twice, 500 items apart: without the bound
		// a batch would hold 500 rings.
		names := append(append([]string(nil), keys[:500]...), keys[:500]...)
		peak, got := run(t, hmacs(names...))
		if peak != kms.MaxBatchRings {
			t.Errorf("held %d rings at once, want %d", peak, kms.MaxBatchRings)
		}
		for _, name := range keys[:500] {
			if got[name] < 1 || got[name] > 2 {
				t.Fatalf("key %s read %d times, want 1 or 2", name, got[name])
			}
		}
	})
}
