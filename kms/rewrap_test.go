package kms_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/minkms/minkms/kms"
)

func TestRewrapAfterRotation(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	ct1, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("secret"), []byte("ctx"))
	wantErr(t, err, nil)
	for range 2 {
		if _, err := e.svc.RotateKey(ctx, e.admin, "default", "k"); err != nil {
			t.Fatal(err)
		}
	}
	ct3, err := e.svc.Rewrap(ctx, e.admin, "default", "k", ct1, []byte("ctx"))
	wantErr(t, err, nil)
	c, err := kms.ParseCiphertext(ct3)
	if err != nil || c.KeyVersion != 3 || c.Format != 2 {
		t.Fatalf("rewrapped ciphertext = %+v, %v; want version 3, format 2", c, err)
	}
	pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", ct3, []byte("ctx"))
	if err != nil || string(pt) != "secret" {
		t.Fatalf("Decrypt(rewrapped) = %q, %v", pt, err)
	}
	// Another context, a tampered or foreign ciphertext: ErrDecrypt only.
	_, err = e.svc.Rewrap(ctx, e.admin, "default", "k", ct1, []byte("other"))
	wantErr(t, err, kms.ErrDecrypt)
	bad := bytes.Clone(ct1)
	bad[len(bad)-1] ^= 1
	_, err = e.svc.Rewrap(ctx, e.admin, "default", "k", bad, []byte("ctx"))
	wantErr(t, err, kms.ErrDecrypt)
	_, err = e.svc.Rewrap(ctx, e.admin, "default", "k", []byte("junk"), nil)
	wantErr(t, err, kms.ErrDecrypt)
	_, err = e.svc.Rewrap(ctx, e.admin, "default", "missing", ct1, nil)
	wantErr(t, err, kms.ErrKeyNotFound)
}

func TestRewrapPolicy(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	e.MustPolicy(t, "default", "enc", kms.Policy{Allow: map[kms.Action][]string{
		kms.ActionKeyEncrypt: {"*"}, kms.ActionKeyDecrypt: {"*"},
	}})
	e.MustPolicy(t, "default", "rw", kms.Policy{Allow: map[kms.Action][]string{kms.ActionKeyRewrap: {"k"}}})
	encUser := e.MustUser(t, "default", "enc", false, "enc")
	rwUser := e.MustUser(t, "default", "rw", false, "rw")
	ct, err := e.svc.Encrypt(ctx, encUser, "default", "k", []byte("x"), nil)
	wantErr(t, err, nil)
	_, err = e.svc.Rewrap(ctx, encUser, "default", "k", ct, nil)
	wantErr(t, err, kms.ErrNotAllowed) // decrypt and encrypt do not imply rewrap
	_, err = e.svc.Rewrap(ctx, rwUser, "default", "k", ct, nil)
	wantErr(t, err, nil)
	_, err = e.svc.Rewrap(ctx, rwUser, "default", "other", ct, nil)
	wantErr(t, err, kms.ErrNotAllowed)
}

func TestBatch(t *testing.T) {
	ctx := context.Background()
	e := MustEnv(t)
	e.MustKey(t, "default", "k")
	e.MustKey(t, "default", "secret")
	old, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("old"), nil)
	wantErr(t, err, nil)
	if _, err := e.svc.RotateKey(ctx, e.admin, "default", "k"); err != nil {
		t.Fatal(err)
	}
	ct, err := e.svc.Encrypt(ctx, e.admin, "default", "k", []byte("hello"), []byte("c"))
	wantErr(t, err, nil)
	e.MustPolicy(t, "default", "app", kms.Policy{Allow: map[kms.Action][]string{
		kms.ActionKeyGenerate: {"*"}, kms.ActionKeyEncrypt: {"*"}, kms.ActionKeyDecrypt: {"k"},
		kms.ActionKeyHMAC: {"k"}, kms.ActionKeyRewrap: {"k"},
	}})
	user := e.MustUser(t, "default", "app", false, "app")
	items := []kms.BatchItem{
		{Action: kms.ActionKeyGenerate, Name: "k", Context: []byte("g")},
		{Action: kms.ActionKeyEncrypt, Name: "k", Plaintext: []byte("p")},
		{Action: kms.ActionKeyDecrypt, Name: "k", Ciphertext: ct, Context: []byte("c")},
		{Action: kms.ActionKeyHMAC, Name: "k", Message: []byte("m")},
		{Action: kms.ActionKeyRewrap, Name: "k", Ciphertext: old},
		{Action: kms.ActionKeyDecrypt, Name: "secret", Ciphertext: ct},     // denied
		{Action: kms.ActionKeyDecrypt, Name: "k", Ciphertext: []byte("x")}, // bad
		{Action: kms.ActionKeyEncrypt, Name: "missing", Plaintext: []byte("p")},
		{Action: "key:delete", Name: "k"},
		{Action: kms.ActionKeyGenerate, Name: "k", Length: 5},
		{Action: kms.ActionKeyEncrypt, Name: "bad/name"},
	}
	res, err := e.svc.Batch(ctx, user, "default", items)
	wantErr(t, err, nil)
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items", len(res), len(items))
	}
	for i := range 5 {
		if res[i].Err != nil {
			t.Fatalf("item %d: %v", i, res[i].Err)
		}
	}
	if pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", res[0].Ciphertext, []byte("g")); err != nil || !bytes.Equal(pt, res[0].Plaintext) || len(pt) != 32 {
		t.Fatalf("generated data key does not decrypt: %v", err)
	}
	if pt, err := e.svc.Decrypt(ctx, e.admin, "default", "k", res[1].Ciphertext, nil); err != nil || string(pt) != "p" {
		t.Fatalf("encrypted item = %q, %v", pt, err)
	}
	if string(res[2].Plaintext) != "hello" {
		t.Fatalf("decrypted item = %q", res[2].Plaintext)
	}
	if want, _ := e.svc.HMAC(ctx, e.admin, "default", "k", []byte("m")); !bytes.Equal(res[3].HMAC, want) {
		t.Fatal("batched HMAC differs from HMAC")
	}
	if c, _ := kms.ParseCiphertext(res[4].Ciphertext); c.KeyVersion != 2 {
		t.Fatalf("rewrapped to version %d, want 2", c.KeyVersion)
	}
	wantErr(t, res[5].Err, kms.ErrNotAllowed)
	wantErr(t, res[6].Err, kms.ErrDecrypt)
	wantErr(t, res[7].Err, kms.ErrKeyNotFound)
	wantCode(t, res[8].Err, kms.Invalid)
	wantCode(t, res[9].Err, kms.Invalid)
	wantCode(t, res[10].Err, kms.Invalid)

	t.Run("another enclave", func(t *testing.T) {
		e.MustEnclave(t, "e2")
		res, err := e.svc.Batch(ctx, user, "e2", items[:2])
		wantErr(t, err, nil)
		for i, r := range res {
			wantErr(t, r.Err, kms.ErrNotAllowed)
			_ = i
		}
	})
	t.Run("too many", func(t *testing.T) {
		_, err := e.svc.Batch(ctx, user, "default", make([]kms.BatchItem, kms.MaxBatchItems+1))
		wantCode(t, err, kms.Invalid)
	})
}

// BenchmarkRewrap measures the kms part of rewrapping in batches of 1,000
// (the target is 1,000,000 in under 2 minutes over the API).
func BenchmarkRewrap(b *testing.B) {
	ctx := context.Background()
	e := MustEnv(b)
	e.MustKey(b, "default", "k")
	items := make([]kms.BatchItem, 1000)
	for i := range items {
		ct, err := e.svc.Encrypt(ctx, e.admin, "default", "k", bytes.Repeat([]byte{1}, 32), []byte(fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		items[i] = kms.BatchItem{Action: kms.ActionKeyRewrap, Name: "k", Ciphertext: ct, Context: []byte(fmt.Sprint(i))}
	}
	if _, err := e.svc.RotateKey(ctx, e.admin, "default", "k"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := e.svc.Batch(ctx, e.admin, "default", items)
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/key")
}
