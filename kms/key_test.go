package kms_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/kms/kmstest"
	"github.com/minkms/minkms/storage/kv"
)

func TestKeyLifecycle(t *testing.T) {
	for _, alg := range []kms.Algorithm{kms.AES256, kms.ChaCha20} {
		t.Run(string(alg), func(t *testing.T) {
			ctx := context.Background()
			e := MustEnv(t)
			ki, err := e.svc.CreateKey(ctx, e.admin, "default", "k", alg)
			wantErr(t, err, nil)
			if ki.Name != "k" || ki.Algorithm != alg || ki.Version != 1 || len(ki.Versions) != 1 || !ki.CreatedAt.Equal(testNow) || ki.CreatedBy != e.admin.Identity {
				t.Fatalf("CreateKey = %+v", ki)
			}
			_, err = e.svc.CreateKey(ctx, e.admin, "default", "k", alg)
			wantErr(t, err, kms.ErrKeyExists)

			ct1, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("one"), []byte("ctx"))
			wantErr(t, err, nil)

			ki, err = e.svc.RotateKey(ctx, e.admin, "default", "k")
			wantErr(t, err, nil)
			if ki.Version != 2 || len(ki.Versions) != 2 || ki.Versions[1].Algorithm != alg {
				t.Fatalf("RotateKey = %+v", ki)
			}
			ct2, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("two"), []byte("ctx"))
			wantErr(t, err, nil)
			if v := mustParse(t, ct2).KeyVersion; v != 2 {
				t.Fatalf("after rotation Encrypt used version %d, want 2", v)
			}

			t.Run("old ciphertext decrypts after rotation", func(t *testing.T) {
				pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct1, []byte("ctx"))
				if err != nil || string(pt) != "one" {
					t.Fatalf("Decrypt = %q, %v", pt, err)
				}
			})
			t.Run("describe", func(t *testing.T) {
				d, err := e.svc.DescribeKey(ctx, e.admin, "default", "k")
				wantErr(t, err, nil)
				if d.Version != 2 || len(d.Versions) != 2 || d.Versions[0].Version != 1 {
					t.Fatalf("DescribeKey = %+v", d)
				}
			})
			t.Run("deleted version no longer decrypts", func(t *testing.T) {
				wantErr(t, e.svc.DeleteKeyVersion(ctx, e.admin, "default", "k", 1), nil)
				_, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct1, []byte("ctx"))
				wantErr(t, err, kms.ErrDecrypt)
				pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct2, []byte("ctx"))
				if err != nil || string(pt) != "two" {
					t.Fatalf("Decrypt(version 2) = %q, %v", pt, err)
				}
				wantErr(t, e.svc.DeleteKeyVersion(ctx, e.admin, "default", "k", 1), kms.ErrKeyVersionNotFound)
			})
			t.Run("only version cannot be deleted", func(t *testing.T) {
				wantCode(t, e.svc.DeleteKeyVersion(ctx, e.admin, "default", "k", 2), kms.Invalid)
			})
			t.Run("version numbers are not reused", func(t *testing.T) {
				ki, err := e.svc.RotateKey(ctx, e.admin, "default", "k")
				wantErr(t, err, nil)
				wantErr(t, e.svc.DeleteKeyVersion(ctx, e.admin, "default", "k", 3), nil)
				ki, err = e.svc.RotateKey(ctx, e.admin, "default", "k")
				wantErr(t, err, nil)
				if ki.Version != 4 {
					t.Fatalf("rotation after deleting the newest version gave version %d, want 4", ki.Version)
				}
			})
			t.Run("delete key", func(t *testing.T) {
				wantErr(t, e.svc.DeleteKey(ctx, e.admin, "default", "k"), nil)
				wantErr(t, e.svc.DeleteKey(ctx, e.admin, "default", "k"), kms.ErrKeyNotFound)
				_, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct2, []byte("ctx"))
				wantErr(t, err, kms.ErrKeyNotFound)
				_, err = e.svc.RotateKey(ctx, e.admin, "default", "k")
				wantErr(t, err, kms.ErrKeyNotFound)
			})
		})
	}
}

func mustParse(tb testing.TB, ct []byte) kms.Ciphertext {
	tb.Helper()
	c, err := kms.ParseCiphertext(ct)
	if err != nil {
		tb.Fatalf("ParseCiphertext: %v", err)
	}
	return c
}

func TestKeyErrors(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	tests := []struct {
		name string
		run  func() error
		want error
		code kms.Code
	}{
		{"create bad name dotdot", func() error { _, err := e.svc.CreateKey(ctx, e.admin, "default", "..", kms.AES256); return err }, nil, kms.Invalid},
		{"create bad name slash", func() error { _, err := e.svc.CreateKey(ctx, e.admin, "default", "a/b", kms.AES256); return err }, nil, kms.Invalid},
		{"create bad enclave", func() error { _, err := e.svc.CreateKey(ctx, e.admin, "", "k2", kms.AES256); return err }, nil, kms.Invalid},
		{"create bad algorithm", func() error { _, err := e.svc.CreateKey(ctx, e.admin, "default", "k2", "DES"); return err }, nil, kms.Invalid},
		{"create in missing enclave", func() error { _, err := e.svc.CreateKey(ctx, e.admin, "nope", "k2", kms.AES256); return err }, kms.ErrEnclaveNotFound, kms.NotFound},
		{"import short key", func() error {
			_, err := e.svc.ImportKey(ctx, e.admin, "default", "k2", kms.AES256, make([]byte, 16))
			return err
		}, nil, kms.Invalid},
		{"import existing", func() error {
			_, err := e.svc.ImportKey(ctx, e.admin, "default", "k", kms.AES256, make([]byte, 32))
			return err
		}, kms.ErrKeyExists, kms.Exists},
		{"describe missing", func() error { _, err := e.svc.DescribeKey(ctx, e.admin, "default", "none"); return err }, kms.ErrKeyNotFound, kms.NotFound},
		{"encrypt missing", func() error { _, err := e.svc.Encrypt(ctx, e.admin, "default", "none", nil, nil); return err }, kms.ErrKeyNotFound, kms.NotFound},
		{"encrypt too large", func() error {
			_, err := e.svc.Encrypt(ctx, e.admin, "default", "k", make([]byte, kms.MaxPlaintext+1), nil)
			return err
		}, nil, kms.Invalid},
		{"decrypt missing key", func() error { _, err := e.svc.Decrypt(ctx, e.admin, "default", "none", nil, nil); return err }, kms.ErrKeyNotFound, kms.NotFound},
		{"delete version missing key", func() error { return e.svc.DeleteKeyVersion(ctx, e.admin, "default", "none", 1) }, kms.ErrKeyNotFound, kms.NotFound},
		{"delete version missing", func() error { return e.svc.DeleteKeyVersion(ctx, e.admin, "default", "k", 9) }, kms.ErrKeyVersionNotFound, kms.NotFound},
		{"hmac missing", func() error { _, err := e.svc.HMAC(ctx, e.admin, "default", "none", nil); return err }, kms.ErrKeyNotFound, kms.NotFound},
		{"list negative limit", func() error {
			_, err := e.svc.ListKeys(ctx, e.admin, "default", kms.ListOptions{Limit: -1})
			return err
		}, nil, kms.Invalid},
		{"list bad continue", func() error {
			_, err := e.svc.ListKeys(ctx, e.admin, "default", kms.ListOptions{ContinueAt: "a/b"})
			return err
		}, nil, kms.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.want != nil {
				wantErr(t, err, tt.want)
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestConcurrentCreateKey(t *testing.T) {
	e := MustEnv(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.CreateKey(context.Background(), e.admin, "default", "race", kms.AES256)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, kms.ErrKeyExists):
			t.Fatalf("CreateKey error %v, want ErrKeyExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", won)
	}
}

// TestConcurrentRotate: eight rotations of one key at once all succeed, or
// answer ErrKeyChanged; the versions are contiguous either way.
func TestConcurrentRotate(t *testing.T) {
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.svc.RotateKey(context.Background(), e.admin, "default", "k") })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, kms.ErrKeyChanged):
			t.Errorf("RotateKey = %v, want success or %q", err, kms.ErrKeyChanged)
		}
	}
	ki, err := e.svc.DescribeKey(context.Background(), e.admin, "default", "k")
	wantErr(t, err, nil)
	if len(ki.Versions) != 1+ok || ki.Version != 1+ok {
		t.Fatalf("%d rotations succeeded but the key has %d versions (newest %d)", ok, len(ki.Versions), ki.Version)
	}
	for i, v := range ki.Versions {
		if v.Version != i+1 {
			t.Fatalf("versions %v are not 1..%d", ki.Versions, 1+ok)
		}
	}
	t.Logf("%d of %d rotations succeeded", ok, n)
}

func TestListKeysPaging(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	var all []string
	for i := range 25 {
		name := fmt.Sprintf("key-%02d", i)
		e.MustKey(t, "default", name)
		all = append(all, name)
	}
	e.MustKey(t, "default", "other")

	t.Run("pages of 10", func(t *testing.T) {
		var got []string
		o := kms.ListOptions{Prefix: "key-", Limit: 10}
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("more than 3 pages")
			}
			p, err := e.svc.ListKeys(ctx, e.admin, "default", o)
			wantErr(t, err, nil)
			if len(p.Names) > 10 {
				t.Fatalf("page of %d names", len(p.Names))
			}
			got = append(got, p.Names...)
			if p.ContinueAt == "" {
				break
			}
			o.ContinueAt = p.ContinueAt
		}
		if fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("paged names = %v, want %v", got, all)
		}
	})
	t.Run("continue at a deleted name", func(t *testing.T) {
		p, err := e.svc.ListKeys(ctx, e.admin, "default", kms.ListOptions{Prefix: "key-", Limit: 2, ContinueAt: "key-05"})
		wantErr(t, err, nil)
		if fmt.Sprint(p.Names) != "[key-05 key-06]" || p.ContinueAt != "key-07" {
			t.Fatalf("page = %+v", p)
		}
		if err := e.svc.DeleteKey(ctx, e.admin, "default", "key-05"); err != nil {
			t.Fatal(err)
		}
		p, err = e.svc.ListKeys(ctx, e.admin, "default", kms.ListOptions{Prefix: "key-", Limit: 2, ContinueAt: "key-05"})
		wantErr(t, err, nil)
		if fmt.Sprint(p.Names) != "[key-06 key-07]" || p.ContinueAt != "key-08" {
			t.Fatalf("page = %+v", p)
		}
	})
	t.Run("default limit and star", func(t *testing.T) {
		p, err := e.svc.ListKeys(ctx, e.admin, "default", kms.ListOptions{Prefix: "*"})
		wantErr(t, err, nil)
		if len(p.Names) != 25 || p.ContinueAt != "" {
			t.Fatalf("page = %+v", p)
		}
	})
	t.Run("user sees only what key:list allows", func(t *testing.T) {
		e.MustPolicy(t, "default", "lister", kms.Policy{
			Allow: map[kms.Action][]string{kms.ActionKeyList: {"key-1*"}},
			Deny:  map[kms.Action][]string{kms.ActionKeyList: {"key-13"}},
		})
		u := e.MustUser(t, "default", "lister", false, "lister")
		var got []string
		o := kms.ListOptions{Limit: 3}
		for {
			p, err := e.svc.ListKeys(ctx, u, "default", o)
			wantErr(t, err, nil)
			got = append(got, p.Names...)
			if p.ContinueAt == "" {
				break
			}
			o.ContinueAt = p.ContinueAt
		}
		want := "[key-10 key-11 key-12 key-14 key-15 key-16 key-17 key-18 key-19]"
		if fmt.Sprint(got) != want {
			t.Fatalf("user listing = %v, want %s", got, want)
		}
	})
}

func TestGenerateKey(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	tests := []struct {
		length, want int
	}{
		{0, 32}, {16, 16}, {32, 32}, {64, 64}, {1024, 1024},
		{15, -1}, {1025, -1}, {-1, -1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.length), func(t *testing.T) {
			pt, ct, err := e.svc.GenerateKey(ctx, e.admin, "default", "k", []byte("c"), tt.length)
			if tt.want < 0 {
				wantCode(t, err, kms.Invalid)
				return
			}
			wantErr(t, err, nil)
			if len(pt) != tt.want {
				t.Fatalf("data key of %d bytes, want %d", len(pt), tt.want)
			}
			got, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct, []byte("c"))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Decrypt(ciphertext) = %x, %v; want the data key", got, err)
			}
		})
	}
}

func TestHMAC(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	material := bytes.Repeat([]byte{0x42}, 32)
	if _, err := e.svc.ImportKey(ctx, e.admin, "default", "mac", kms.AES256, material); err != nil {
		t.Fatal(err)
	}
	sum1, err := e.svc.HMAC(ctx, e.admin, "default", "mac", []byte("message"))
	wantErr(t, err, nil)

	t.Run("documented derivation", func(t *testing.T) {
		sub, err := hkdf.Key(sha256.New, material, nil, "minkms/v1/hmac", 32)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, sub)
		m.Write([]byte("message"))
		if want := m.Sum(nil); !bytes.Equal(sum1, want) {
			t.Fatalf("HMAC = %x, want %x", sum1, want)
		}
		raw := hmac.New(sha256.New, material)
		raw.Write([]byte("message"))
		if bytes.Equal(sum1, raw.Sum(nil)) {
			t.Fatal("HMAC uses the key material directly")
		}
	})
	t.Run("stable", func(t *testing.T) {
		sum2, err := e.svc.HMAC(ctx, e.admin, "default", "mac", []byte("message"))
		if err != nil || !bytes.Equal(sum1, sum2) {
			t.Fatalf("second HMAC = %x, %v; want %x", sum2, err, sum1)
		}
		other, _ := e.svc.HMAC(ctx, e.admin, "default", "mac", []byte("other"))
		if bytes.Equal(sum1, other) {
			t.Fatal("two messages have the same HMAC")
		}
	})
	t.Run("rotation changes it", func(t *testing.T) {
		if _, err := e.svc.RotateKey(ctx, e.admin, "default", "mac"); err != nil {
			t.Fatal(err)
		}
		sum3, err := e.svc.HMAC(ctx, e.admin, "default", "mac", []byte("message"))
		wantErr(t, err, nil)
		if bytes.Equal(sum1, sum3) {
			t.Fatal("HMAC did not change with the key version")
		}
	})
}

// keyBufferSpy is a kms.Reader and kms.Proposer over a kmstest.State that
// keeps every key-ring buffer kms reads from or hands to the state, so that
// a test can check that kms zeroed them once done.
type keyBufferSpy struct {
	*kmstest.State
	mu   sync.Mutex
	bufs [][]byte
}

func (s *keyBufferSpy) keep(bucket string, b []byte) {
	if strings.HasSuffix(bucket, "/keys") {
		s.mu.Lock()
		s.bufs = append(s.bufs, b)
		s.mu.Unlock()
	}
}

func (s *keyBufferSpy) Get(ctx context.Context, bucket, name string) (kv.Entry, error) {
	e, err := s.State.Get(ctx, bucket, name)
	s.keep(bucket, e.Value)
	return e, err
}

func (s *keyBufferSpy) Propose(ctx context.Context, c kv.Change) error {
	for _, m := range c.Apply {
		s.keep(m.Bucket, m.Value)
	}
	return s.State.Propose(ctx, c)
}

func TestKeyMaterialBuffersZeroed(t *testing.T) {
	ctx := context.Background()
	spy := &keyBufferSpy{State: kmstest.New(t)}
	admin := MustIdentity(t, "root")
	svc := kms.New(spy, spy, kms.Options{Admins: []kms.Identity{admin}})
	if err := svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	c := MustCaller(t, svc, admin)

	imported := bytes.Repeat([]byte{0x5a}, kms.KeySize)
	steps := map[string]func() error{
		"create": func() error { _, err := svc.CreateKey(ctx, c, "default", "k", kms.AES256); return err },
		"import": func() error { _, err := svc.ImportKey(ctx, c, "default", "i", kms.ChaCha20, imported); return err },
		"rotate": func() error { _, err := svc.RotateKey(ctx, c, "default", "k"); return err },
		"encrypt and decrypt": func() error {
			ct, err := svc.Encrypt(ctx, c, "default", "k", []byte("x"), nil)
			if err == nil {
				_, err = svc.Decrypt(ctx, c, "default", "k", ct, nil)
			}
			return err
		},
		"hmac":           func() error { _, err := svc.HMAC(ctx, c, "default", "k", []byte("m")); return err },
		"describe":       func() error { _, err := svc.DescribeKey(ctx, c, "default", "k"); return err },
		"delete version": func() error { return svc.DeleteKeyVersion(ctx, c, "default", "k", 1) },
	}
	for _, name := range []string{"create", "import", "rotate", "encrypt and decrypt", "hmac", "describe", "delete version"} {
		t.Run(name, func(t *testing.T) {
			spy.mu.Lock()
			spy.bufs = nil
			spy.mu.Unlock()
			if err := steps[name](); err != nil {
				t.Fatal(err)
			}
			spy.mu.Lock()
			defer spy.mu.Unlock()
			if len(spy.bufs) == 0 {
				t.Fatal("no key ring buffer went through the state; the check proves nothing")
			}
			for i, b := range spy.bufs {
				if len(b) == 0 || bytes.Count(b, []byte{0}) != len(b) {
					t.Errorf("key ring buffer %d of %d not zeroed: %q", i+1, len(spy.bufs), truncated(b))
				}
			}
		})
	}
	if !bytes.Equal(imported, bytes.Repeat([]byte{0x5a}, kms.KeySize)) {
		t.Error("ImportKey changed the caller's key")
	}
}

func truncated(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// busyRing is a Proposer whose key-ring updates lose to another one: the
// first losses of them (all of them if losses is negative).
type busyRing struct {
	*kmstest.State
	losses int
	lost   *atomic.Int64
}

func (b busyRing) Propose(ctx context.Context, c kv.Change) error {
	for i, r := range c.Require {
		if r.Kind == kv.AtRevision && (b.losses < 0 || b.lost.Load() < int64(b.losses)) {
			b.lost.Add(1)
			return &kv.ConditionError{Index: i, Code: r.Code}
		}
	}
	return b.State.Propose(ctx, c)
}

// mustBusyEnv returns a Service over a busyRing that loses losses times,
// with the key "k" in two versions, and its caller.
func mustBusyEnv(t *testing.T, losses int) (*kms.Service, kms.Caller, *atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	st := kmstest.New(t)
	admin := MustIdentity(t, "root")
	lost := new(atomic.Int64)
	svc := kms.New(st, busyRing{st, 0, lost}, kms.Options{Admins: []kms.Identity{admin}})
	if err := svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	c := MustCaller(t, svc, admin)
	if _, err := svc.CreateKey(ctx, c, "default", "k", kms.AES256); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateKey(ctx, c, "default", "k"); err != nil {
		t.Fatal(err)
	}
	return kms.New(st, busyRing{st, losses, lost}, kms.Options{Admins: []kms.Identity{admin}}), c, lost
}

// TestUpdateRingRetries: a rotation or a version deletion that loses to
// other changes many times in a row still succeeds, with backoff, well
// within the request's deadline.
func TestUpdateRingRetries(t *testing.T) {
	const losses = 12
	t.Run("RotateKey", func(t *testing.T) {
		svc, c, lost := mustBusyEnv(t, losses)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ki, err := svc.RotateKey(ctx, c, "default", "k")
		wantErr(t, err, nil)
		if ki.Version != 3 || lost.Load() != losses {
			t.Errorf("version %d after %d lost attempts, want 3 after %d", ki.Version, lost.Load(), losses)
		}
	})
	t.Run("DeleteKeyVersion", func(t *testing.T) {
		svc, c, lost := mustBusyEnv(t, losses)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wantErr(t, svc.DeleteKeyVersion(ctx, c, "default", "k", 1), nil)
		ki, err := svc.DescribeKey(ctx, c, "default", "k")
		wantErr(t, err, nil)
		if len(ki.Versions) != 1 || ki.Versions[0].Version != 2 || lost.Load() != losses {
			t.Errorf("versions %v after %d lost attempts, want [2] after %d", ki.Versions, lost.Load(), losses)
		}
	})
}

// TestRotateKeyBusy: an update that keeps losing answers ErrKeyChanged (a
// Conflict, 409), not Unavailable: 503 would send clients to another node
// of a cluster that is fine. It gives up before the deadline rather than
// time out.
func TestRotateKeyBusy(t *testing.T) {
	for _, timeout := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("Deadline%s", timeout), func(t *testing.T) {
			svc, c, _ := mustBusyEnv(t, -1)
			ctx := context.Background()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			_, err := svc.RotateKey(ctx, c, "default", "k")
			wantErr(t, err, kms.ErrKeyChanged)
			wantCode(t, err, kms.Conflict)
			if ctx.Err() != nil {
				t.Errorf("RotateKey returned after the deadline: %v", ctx.Err())
			}
			err = svc.DeleteKeyVersion(ctx, c, "default", "k", 1)
			if timeout == 0 {
				wantErr(t, err, kms.ErrKeyChanged)
			}
			if errors.Is(err, kms.ErrNoLeader) || strings.Contains(kms.Message(err), "leader") {
				t.Errorf("DeleteKeyVersion under contention = %q, want a message about the key, not the leader", kms.Message(err))
			}
		})
	}
}
