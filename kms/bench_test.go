package kms_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/minkms/minkms/kms"
)

// The cryptographic operations over an in-memory state: what kms itself
// costs per request, without storage, raft or HTTP. Encrypt, Decrypt and
// GenerateKey run once per envelope format: format2 is what a build
// writes, format1 the baseline of one AEAD key per key version (Decrypt of
// format 1 is also what every old ciphertext costs).
//
//	go test -run '^$' -bench . -benchtime 2000x ./kms/
func BenchmarkService(b *testing.B) {
	e := MustEnv(b)
	ctx := context.Background()
	if _, err := e.svc.CreateKey(ctx, e.admin, kms.DefaultEnclave, "bench", kms.AES256); err != nil {
		b.Fatal(err)
	}
	for _, format := range []int{1, 2} {
		kms.SetEnvelopeFormat(e.svc, format)
		for _, size := range []int{32, 1024, 64 << 10} {
			plaintext := make([]byte, size)
			b.Run(fmt.Sprintf("format%d/Encrypt/%dB", format, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, "bench", plaintext, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			ct, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, "bench", plaintext, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("format%d/Decrypt/%dB", format, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := e.svc.Decrypt(ctx, e.admin, kms.DefaultEnclave, "bench", ct, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("format%d/GenerateKey", format), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := e.svc.GenerateKey(ctx, e.admin, kms.DefaultEnclave, "bench", []byte("ctx"), 32); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	kms.SetEnvelopeFormat(e.svc, 0)
	b.Run("HMAC", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.svc.HMAC(ctx, e.admin, kms.DefaultEnclave, "bench", []byte("message")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncrypt is the target of the kms core: Encrypt of 32 bytes with
// a warm cache, for a cluster admin and for a user limited by a policy (with
// the Caller lookup of each request, as the server does it).
//
//	go test -run '^$' -bench Encrypt -benchmem ./kms/
func BenchmarkEncrypt(b *testing.B) {
	e := MustEnv(b)
	ctx := context.Background()
	e.MustEnclave(b, "e")
	if _, err := e.svc.CreatePolicy(ctx, e.admin, "e", "p", kms.Policy{Allow: map[kms.Action][]string{kms.ActionKeyEncrypt: {"bench*"}}}, false); err != nil {
		b.Fatal(err)
	}
	user := MustIdentity(b, "bench-user")
	if _, err := e.svc.CreateIdentity(ctx, e.admin, "e", user, false, "p", ""); err != nil {
		b.Fatal(err)
	}
	e.MustKey(b, kms.DefaultEnclave, "bench")
	e.MustKey(b, "e", "bench")
	plaintext := make([]byte, 32)
	for _, format := range []int{1, 2} {
		kms.SetEnvelopeFormat(e.svc, format)
		b.Run(fmt.Sprintf("format%d/admin/32B", format), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Encrypt(ctx, e.admin, kms.DefaultEnclave, "bench", plaintext, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("format%d/user/32B", format), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := e.svc.Caller(ctx, user)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.svc.Encrypt(ctx, c, "e", "bench", plaintext, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	kms.SetEnvelopeFormat(e.svc, 0)
}
