package kms_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage/kv"
)

// The cache is never stale on this node once a change returned: readers
// that run concurrently with a change may see either side of it, but every
// request that starts after the change returned sees the change. Each test
// runs readers against a writer and checks exactly that; run them with
// -race. MustEnv wires the cache to the state as the FSM does.

// readers runs n goroutines calling read until stop is closed; read gets
// the writer's step as it was when the call started and reports a stale
// answer as an error.
func readers(t *testing.T, n int, step *atomic.Int64, read func(step int64) error) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := read(step.Load()); err != nil && failed.CompareAndSwap(false, true) {
					t.Error(err)
				}
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

func TestCacheRotateNeverStale(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	e.MustKey(t, kms.DefaultEnclave, "k")
	var version atomic.Int64 // the newest version whose rotation returned
	version.Store(1)
	stop := readers(t, 4, &version, func(want int64) error {
		ct, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, "k", []byte("x"), nil)
		if err != nil {
			return err
		}
		c, err := kms.ParseCiphertext(ct)
		if err != nil {
			return err
		}
		if int64(c.KeyVersion) < want {
			return fmt.Errorf("encrypted with version %d after the rotation to %d returned", c.KeyVersion, want)
		}
		return nil
	})
	for range 30 {
		info, err := e.svc.RotateKey(ctx, e.admin, kms.DefaultEnclave, "k")
		if err != nil {
			t.Fatal(err)
		}
		version.Store(int64(info.Version))
		time.Sleep(time.Millisecond) // let the readers warm the cache again
	}
	stop()
	if st := e.svc.Stats(); st.Hits == 0 || st.Invalidations == 0 {
		t.Errorf("Stats = %+v: want hits and invalidations", st)
	}
}

func TestCacheDeleteNeverStale(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	for round := range 10 {
		name := fmt.Sprintf("k%d", round)
		e.MustKey(t, kms.DefaultEnclave, name)
		ct, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, name, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		var deleted atomic.Int64
		stop := readers(t, 4, &deleted, func(deleted int64) error {
			_, err := e.svc.Decrypt(ctx, e.admin, kms.DefaultEnclave, name, ct, nil)
			if deleted == 1 && !errors.Is(err, kms.ErrKeyNotFound) {
				return fmt.Errorf("Decrypt after the delete returned: %v, want ErrKeyNotFound", err)
			}
			return nil
		})
		warm(t, e)
		if err := e.svc.DeleteKey(ctx, e.admin, kms.DefaultEnclave, name); err != nil {
			t.Fatal(err)
		}
		deleted.Store(1)
		time.Sleep(2 * time.Millisecond)
		stop()
	}
}

// warm waits until the readers were answered from the cache.
func warm(t *testing.T, e *env) {
	t.Helper()
	hits := e.svc.Stats().Hits
	deadline := time.Now().Add(10 * time.Second)
	for e.svc.Stats().Hits < hits+20 {
		if time.Now().After(deadline) {
			t.Fatal("the readers are not answered from the cache")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// policyUser creates a user in enclave "e" bound to policy "p", which allows
// encrypting with every key.
func policyUser(t *testing.T, e *env) kms.Identity {
	t.Helper()
	ctx := context.Background()
	e.MustEnclave(t, "e")
	if _, err := e.svc.CreatePolicy(ctx, e.admin, "e", "p", kms.Policy{Allow: map[kms.Action][]string{kms.ActionKeyEncrypt: {"*"}}}, false); err != nil {
		t.Fatal(err)
	}
	id := MustIdentity(t, "user")
	if _, err := e.svc.CreateIdentity(ctx, e.admin, "e", id, false, "p", ""); err != nil {
		t.Fatal(err)
	}
	e.MustKey(t, "e", "k")
	return id
}

func TestCachePolicyChangeNeverStale(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	id := policyUser(t, e)
	var denied atomic.Int64
	stop := readers(t, 4, &denied, func(denied int64) error {
		c, err := e.svc.Caller(ctx, id)
		if err != nil {
			return err
		}
		_, err = e.svc.Encrypt(ctx, c, "e", "k", []byte("x"), nil)
		if denied == 1 && !errors.Is(err, kms.ErrNotAllowed) {
			return fmt.Errorf("Encrypt after the policy was replaced: %v, want ErrNotAllowed", err)
		}
		return nil
	})
	time.Sleep(5 * time.Millisecond)
	warm(t, e)
	deny := kms.Policy{Allow: map[kms.Action][]string{kms.ActionKeyDecrypt: {"*"}}}
	if _, err := e.svc.CreatePolicy(ctx, e.admin, "e", "p", deny, true); err != nil {
		t.Fatal(err)
	}
	denied.Store(1)
	time.Sleep(5 * time.Millisecond)
	stop()
}

func TestCacheIdentityRemovalNeverStale(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	id := policyUser(t, e)
	var removed atomic.Int64
	stop := readers(t, 4, &removed, func(removed int64) error {
		c, err := e.svc.Caller(ctx, id)
		if removed == 1 {
			if !errors.Is(err, kms.ErrNotAllowed) {
				return fmt.Errorf("Caller after the identity was deleted: %+v, %v; want ErrNotAllowed", c, err)
			}
			return nil
		}
		return nil
	})
	time.Sleep(5 * time.Millisecond)
	warm(t, e)
	if err := e.svc.DeleteIdentity(ctx, e.admin, "e", id); err != nil {
		t.Fatal(err)
	}
	removed.Store(1)
	time.Sleep(5 * time.Millisecond)
	stop()
}

func TestCacheEnclaveDeletionNeverStale(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	id := policyUser(t, e)
	c := MustCaller(t, e.svc, id)
	if _, err := e.svc.Encrypt(ctx, c, "e", "k", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteEnclave(ctx, e.admin, "e"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Encrypt(ctx, e.admin, "e", "k", []byte("x"), nil); !errors.Is(err, kms.ErrEnclaveNotFound) {
		t.Errorf("Encrypt in a deleted enclave: %v, want ErrEnclaveNotFound", err)
	}
	if _, err := e.svc.Caller(ctx, id); !errors.Is(err, kms.ErrNotAllowed) {
		t.Errorf("Caller of an identity of a deleted enclave: %v, want ErrNotAllowed", err)
	}
}

// blockingReader holds up the first read of one state entry after it read
// it, until released: a request that read the state before a change and
// wants to cache what it read after the change returned.
type blockingReader struct {
	kms.Reader
	bucket, name string
	held         atomic.Bool
	read         chan struct{} // closed when the held-up read has read
	release      chan struct{}
}

func (r *blockingReader) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	e, err := r.Reader.Get(ctx, bucket, name)
	if bucket == r.bucket && name == r.name {
		if r.held.CompareAndSwap(false, true) {
			close(r.read)
			<-r.release
		}
	}
	return e, err
}

// heldService returns a Service over e's state whose first read of key k
// is held up after it read, and a request that makes that read.
func heldService(t *testing.T, e *env) (*kms.Service, kms.Caller, *blockingReader, chan int) {
	t.Helper()
	br := &blockingReader{Reader: e.state, bucket: "enclaves/default/keys", name: "k", read: make(chan struct{}), release: make(chan struct{})}
	svc := kms.New(br, e.state, kms.Options{Admins: []kms.Identity{MustIdentity(t, "root")}, CacheMaxEntries: 100})
	e.state.OnApply(svc.Invalidate)
	t.Cleanup(svc.Close)
	admin := MustCaller(t, svc, MustIdentity(t, "root"))
	slow := make(chan int, 1)
	go func() {
		ct, err := svc.Encrypt(context.Background(), admin, kms.DefaultEnclave, "k", []byte("x"), nil)
		if err != nil {
			t.Error(err)
			slow <- 0
			return
		}
		c, _ := kms.ParseCiphertext(ct)
		slow <- c.KeyVersion
	}()
	<-br.read
	return svc, admin, br, slow
}

func mustVersion(t *testing.T, svc *kms.Service, c kms.Caller, want int) {
	t.Helper()
	ct, err := svc.Encrypt(context.Background(), c, kms.DefaultEnclave, "k", []byte("x"), nil)
	if err != nil {
		t.Error(err) // not Fatal: also called from other goroutines
		return
	}
	if got, _ := kms.ParseCiphertext(ct); got.KeyVersion != want {
		t.Errorf("encrypted with version %d, want %d: a read from before the rotation was served", got.KeyVersion, want)
	}
}

// TestCacheReadBeforeInvalidation: a request that read a key ring before a
// rotation and finishes after it does not put the old ring into the cache
// (the applied-index watermark refuses it).
func TestCacheReadBeforeInvalidation(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	e.MustKey(t, kms.DefaultEnclave, "k")
	svc, admin, br, slow := heldService(t, e)
	if _, err := svc.RotateKey(ctx, admin, kms.DefaultEnclave, "k"); err != nil {
		t.Fatal(err)
	}
	close(br.release)
	if v := <-slow; v != 1 {
		t.Errorf("the held-up request encrypted with version %d, want 1 (what it read)", v)
	}
	mustVersion(t, svc, admin, 2)
	mustVersion(t, svc, admin, 2) // now from the cache
}

// TestCacheNoJoinAcrossInvalidation: a request that starts after a rotation
// returned neither waits for a fetch that started before it nor gets its
// answer.
func TestCacheNoJoinAcrossInvalidation(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	e.MustKey(t, kms.DefaultEnclave, "k")
	svc, admin, br, slow := heldService(t, e)
	defer func() { close(br.release); <-slow }()
	if _, err := svc.RotateKey(ctx, admin, kms.DefaultEnclave, "k"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustVersion(t, svc, admin, 2)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a request after the rotation waits for a fetch from before it")
	}
}

// TestCacheBounded: the cache keeps at most its bound, evicting, and
// counts what it does; InvalidateAll (a snapshot restore) empties it.
func TestCacheBounded(t *testing.T) {
	e := MustEnv(t, func(o *kms.Options) { o.CacheMaxEntries = 4 })
	ctx := context.Background()
	for i := range 10 {
		name := fmt.Sprintf("k%d", i)
		e.MustKey(t, kms.DefaultEnclave, name)
		if _, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, name, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	st := e.svc.Stats()
	if st.Entries > 4 || st.MaxEntries != 4 || st.Evictions == 0 || st.Misses == 0 {
		t.Errorf("Stats = %+v: want at most 4 entries and evictions", st)
	}
	e.svc.InvalidateAll(1 << 40)
	if st := e.svc.Stats(); st.Entries != 0 {
		t.Errorf("Stats after InvalidateAll = %+v, want no entries", st)
	}
	// Still serves, and caches again once the state is at the index.
	if _, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, "k9", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestCacheOff: without a cache every request reads the state, and nothing
// needs Invalidate.
func TestCacheOff(t *testing.T) {
	e := MustEnv(t, func(o *kms.Options) { o.CacheMaxEntries = 0 })
	e.MustKey(t, kms.DefaultEnclave, "k")
	if _, err := e.svc.Encrypt(context.Background(), e.admin, kms.DefaultEnclave, "k", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if st := e.svc.Stats(); st != (kms.CacheStats{}) {
		t.Errorf("Stats = %+v, want zero", st)
	}
}

// downReader is a Reader whose state may not be served while down is set,
// as a node cut off from its leader for longer than cluster.max_stale.
type downReader struct {
	kms.Reader
	down atomic.Bool
}

func (r *downReader) Ready(ctx context.Context) error {
	if r.down.Load() {
		return fmt.Errorf("cut off: %w", kms.ErrUnavailable)
	}
	return nil
}

func (r *downReader) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	if err := r.Ready(ctx); err != nil {
		return kv.Entry{}, err
	}
	return r.Reader.Get(ctx, bucket, name)
}

// TestCacheServesNothingWhenNotReady: a warm cache answers nothing while
// the Reader says the state may not be served.
func TestCacheServesNothingWhenNotReady(t *testing.T) {
	e := MustEnv(t)
	ctx := context.Background()
	id := policyUser(t, e)
	dr := &downReader{Reader: e.state}
	svc := kms.New(dr, e.state, kms.Options{Admins: []kms.Identity{MustIdentity(t, "root")}, CacheMaxEntries: 100})
	e.state.OnApply(svc.Invalidate)
	t.Cleanup(svc.Close)
	c := MustCaller(t, svc, id)
	if _, err := svc.Encrypt(ctx, c, "e", "k", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	dr.down.Store(true)
	if _, err := svc.Caller(ctx, id); !errors.Is(err, kms.ErrNoLeader) {
		t.Errorf("Caller while not ready: %v, want ErrNoLeader", err)
	}
	if _, err := svc.Encrypt(ctx, c, "e", "k", []byte("x"), nil); !errors.Is(err, kms.ErrNoLeader) {
		t.Errorf("Encrypt while not ready: %v, want ErrNoLeader", err)
	}
	dr.down.Store(false)
	if _, err := svc.Encrypt(ctx, c, "e", "k", []byte("x"), nil); err != nil {
		t.Errorf("Encrypt when ready again: %v", err)
	}
}
