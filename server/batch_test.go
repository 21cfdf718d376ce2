package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// TestBatch: every item kind in one batch, a bad and a denied item among
// good ones that fail alone, in order, on both batch routes; one audit
// record for the batch with the counts, one per denied item.
func TestBatch(t *testing.T) {
	n := mustStartLogNode(t, slog.LevelInfo)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/b-key", nil, nil)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/b-secret", nil, nil)
	var enc api.EncryptKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/encrypt/b-key", api.EncryptKeyRequest{Plaintext: []byte("hello"), Context: []byte("c")}, &enc)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/keys/b-key/rotate", nil, nil)
	user, userKey := mustUser(t, n.node, "batcher", map[string][]string{
		"key:generate": {"b-*"}, "key:encrypt": {"b-*"}, "key:decrypt": {"b-key"},
		"key:hmac": {"b-key"}, "key:rewrap": {"b-key"},
	})
	items := []api.BatchItem{
		{Op: api.BatchGenerate, Name: "b-key", Context: []byte("g")},
		{Op: api.BatchEncrypt, Name: "b-key", Plaintext: []byte("p")},
		{Op: api.BatchDecrypt, Name: "b-key", Ciphertext: enc.Ciphertext, Context: []byte("c")},
		{Op: api.BatchHMAC, Name: "b-key", Message: []byte("m")},
		{Op: api.BatchRewrap, Name: "b-key", Ciphertext: enc.Ciphertext, Context: []byte("c")},
		{Op: api.BatchDecrypt, Name: "b-secret", Ciphertext: enc.Ciphertext}, // denied
		{Op: api.BatchDecrypt, Name: "b-key", Ciphertext: []byte("junk")},
		{Op: api.BatchEncrypt, Name: "b-missing", Plaintext: []byte("p")},
		{Op: "delete", Name: "b-key"},
		{Op: api.BatchEncrypt, Name: "bad name"},
	}
	for _, path := range []string{"/v1/batch", "/v1/enclaves/default/batch"} {
		t.Run(path, func(t *testing.T) {
			var resp api.BatchResponse
			n.MustOK(t, user, http.MethodPost, path, api.BatchRequest{Items: items}, &resp)
			if len(resp.Items) != len(items) {
				t.Fatalf("%d results for %d items", len(resp.Items), len(items))
			}
			for i := range 5 {
				if r := resp.Items[i]; r.Status != 200 || r.Message != "" {
					t.Fatalf("item %d = %d %q", i, r.Status, r.Message)
				}
			}
			r := resp.Items
			if len(r[0].Plaintext) != 32 || len(r[0].Ciphertext) == 0 || len(r[1].Ciphertext) == 0 ||
				string(r[2].Plaintext) != "hello" || len(r[3].HMAC) != 32 {
				t.Fatalf("results = %+v", r[:4])
			}
			var dec api.DecryptKeyResponse
			n.MustOK(t, n.admin, http.MethodPut, "/v1/key/decrypt/b-key", api.DecryptKeyRequest{Ciphertext: r[4].Ciphertext, Context: []byte("c")}, &dec)
			if c, _ := kms.ParseCiphertext(r[4].Ciphertext); string(dec.Plaintext) != "hello" || c.KeyVersion != 2 {
				t.Fatalf("rewrapped item: %q, version %d", dec.Plaintext, c.KeyVersion)
			}
			want := []struct {
				status int
				msg    string
			}{
				{403, api.ErrNotAllowed.Message},
				{400, api.ErrDecrypt.Message},
				{404, api.ErrKeyNotFound.Message},
				{400, `invalid op "delete": use generate, encrypt, decrypt, hmac or rewrap`},
				{400, ""},
			}
			for i, w := range want {
				got := r[5+i]
				if got.Status != w.status || w.msg != "" && got.Message != w.msg || got.Message == "" || got.Ciphertext != nil || got.Plaintext != nil {
					t.Errorf("item %d = %d %q, want %d %q", 5+i, got.Status, got.Message, w.status, w.msg)
				}
			}
		})
	}

	recs := mustLines[api.AuditRecord](t, n.node, n.admin, "/v1/logs/audit")
	var batches, denied int
	for _, rec := range recs {
		switch {
		case rec.Identity == userKey.Identity() && rec.Action == "key:batch":
			batches++
			wantCounts := map[string]int{"key:generate": 1, "key:encrypt": 3, "key:decrypt": 3, "key:hmac": 1, "key:rewrap": 1}
			for a, c := range wantCounts {
				if rec.Batch[a] != c {
					t.Errorf("batch record counts = %v, want %v", rec.Batch, wantCounts)
					break
				}
			}
			if rec.Status != 200 || rec.Enclave != "default" {
				t.Errorf("batch record = %+v", rec)
			}
		case rec.Identity == userKey.Identity() && rec.Status == 403:
			denied++
			if rec.Action != "key:decrypt" || rec.Object != "b-secret" || rec.Enclave != "default" {
				t.Errorf("denied item record = %+v", rec)
			}
		}
	}
	if batches != 2 || denied != 2 {
		t.Errorf("%d batch records and %d denied item records, want 2 and 2", batches, denied)
	}
	if !strings.Contains(n.stderr.String(), `"object":"b-secret"`) {
		t.Errorf("the denied item is not logged: %s", n.stderr.String())
	}
}

// TestBatchLimits: too many items, no items, a body over the batch limit,
// and a batch body over 1 MiB but under 8 MiB that is taken.
func TestBatchLimits(t *testing.T) {
	n := MustSharedNode(t)
	key := uniqueName("limits-key") // the shared node outlives a run: -count
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/"+key, nil, nil)
	item := api.BatchItem{Op: api.BatchHMAC, Name: key, Message: []byte("m")}
	many := make([]api.BatchItem, api.MaxBatchItems+1)
	for i := range many {
		many[i] = item
	}
	if r := n.MustDo(t, n.admin, http.MethodPost, "/v1/batch", api.BatchRequest{Items: many}); r.Status != 400 ||
		r.Message() != "too many items in the batch: 1001, at most 1000" {
		t.Errorf("1001 items = %d %q", r.Status, r.Message())
	}
	if r := n.MustDo(t, n.admin, http.MethodPost, "/v1/batch", api.BatchRequest{}); r.Status != 400 || !strings.Contains(r.Message(), "empty batch") {
		t.Errorf("no items = %d %q", r.Status, r.Message())
	}
	big := bytes.Repeat([]byte{1}, 6<<10) // 8 KiB in base64
	items := make([]api.BatchItem, 1000)
	for i := range items {
		items[i] = api.BatchItem{Op: api.BatchHMAC, Name: key, Message: big}
	}
	var resp api.BatchResponse
	n.MustOK(t, n.admin, http.MethodPost, "/v1/enclaves/default/batch", api.BatchRequest{Items: items}, &resp)
	if len(resp.Items) != 1000 || resp.Items[999].Status != 200 {
		t.Errorf("a batch of 8 MB: %d items", len(resp.Items))
	}
	huge := bytes.Repeat([]byte{1}, 9<<10)
	for i := range items {
		items[i].Message = huge
	}
	if r := n.MustDo(t, n.admin, http.MethodPost, "/v1/batch", api.BatchRequest{Items: items}); r.Status != 413 || r.Message() != "batch body too large: at most 8 MiB" {
		t.Errorf("a batch of 12 MB = %d %q", r.Status, r.Message())
	}
	// Other routes keep the 1 MiB limit.
	if r := n.MustDo(t, n.admin, http.MethodPut, "/v1/key/hmac/"+key, api.HMACRequest{Message: bytes.Repeat([]byte{1}, 1<<20)}); r.Status != 413 {
		t.Errorf("an HMAC of 1.3 MB = %d, want 413", r.Status)
	}
}

// TestRewrapRoutes: a ciphertext of version 1 rewrapped after a rotation
// names version 2 and decrypts to the same plaintext, on both routes; a
// wrong context is the one decrypt error; key:rewrap is needed.
func TestRewrapRoutes(t *testing.T) {
	n := MustSharedNode(t)
	key := uniqueName("rw-key") // the shared node outlives a run: -count
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/"+key, nil, nil)
	var gen api.GenerateKeyResponse
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/generate/"+key, api.GenerateKeyRequest{Context: []byte("obj")}, &gen)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/enclaves/default/keys/"+key+"/rotate", nil, nil)
	for _, path := range []string{"/v1/key/rewrap/" + key, "/v1/enclaves/default/keys/" + key + "/rewrap"} {
		var rw api.RewrapResponse
		n.MustOK(t, n.admin, http.MethodPost, path, api.RewrapRequest{Ciphertext: gen.Ciphertext, Context: []byte("obj")}, &rw)
		if c, err := kms.ParseCiphertext(rw.Ciphertext); err != nil || c.KeyVersion != 2 || c.Format != 2 {
			t.Fatalf("%s: rewrapped = %+v, %v", path, c, err)
		}
		var dec api.DecryptKeyResponse
		n.MustOK(t, n.admin, http.MethodPut, "/v1/key/decrypt/"+key, api.DecryptKeyRequest{Ciphertext: rw.Ciphertext, Context: []byte("obj")}, &dec)
		if !bytes.Equal(dec.Plaintext, gen.Plaintext) {
			t.Fatalf("%s: the rewrapped ciphertext decrypts to another plaintext", path)
		}
		if r := n.MustDo(t, n.admin, http.MethodPost, path, api.RewrapRequest{Ciphertext: gen.Ciphertext, Context: []byte("other")}); r.Status != 400 || r.Message() != api.ErrDecrypt.Message {
			t.Fatalf("%s with another context = %d %q", path, r.Status, r.Message())
		}
	}
	user, _ := mustUser(t, n, uniqueName("rw-decrypt-only"), map[string][]string{"key:decrypt": {"rw-*"}, "key:encrypt": {"rw-*"}})
	if r := n.MustDo(t, user, http.MethodPost, "/v1/key/rewrap/"+key, api.RewrapRequest{Ciphertext: gen.Ciphertext, Context: []byte("obj")}); r.Status != 403 {
		t.Fatalf("rewrap without key:rewrap = %d %q", r.Status, r.Message())
	}
}

// TestBatchSDK: Client.Batch, Enclave.Batch and Rewrap round trip, and an
// item's error matches the api sentinels.
func TestBatchSDK(t *testing.T) {
	n := MustSharedNode(t)
	name := uniqueName("sdk-batch") // the shared node outlives a run: -count
	key, err := api.ParseAPIKey(n.info.APIKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(api.Config{Endpoints: []string{n.url}, APIKey: key, RootCAs: n.pool, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.CreateKey(ctx, name); err != nil {
		t.Fatal(err)
	}
	items := make([]api.BatchItem, 100)
	for i := range items {
		items[i] = api.BatchItem{Op: api.BatchGenerate, Name: name}
	}
	res, err := c.Batch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enclave("default").RotateKey(ctx, name); err != nil {
		t.Fatal(err)
	}
	rewraps := make([]api.BatchItem, len(res))
	for i, r := range res {
		if err := r.Err(); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		rewraps[i] = api.BatchItem{Op: api.BatchRewrap, Name: name, Ciphertext: r.Ciphertext}
	}
	rewraps = append(rewraps, api.BatchItem{Op: api.BatchRewrap, Name: name, Ciphertext: []byte("junk")})
	out, err := c.Enclave("default").Batch(ctx, rewraps)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		pt, err := c.Decrypt(ctx, name, out[i].Ciphertext, nil)
		if err != nil || !bytes.Equal(pt, res[i].Plaintext) {
			t.Fatalf("rewrapped item %d: %v", i, err)
		}
	}
	if err := out[len(res)].Err(); !errors.Is(err, api.ErrDecrypt) {
		t.Fatalf("junk item: %v, want ErrDecrypt", err)
	}
	ct, err := c.Rewrap(ctx, name, res[0].Ciphertext, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct2, err := c.Enclave("default").Rewrap(ctx, name, ct, nil); err != nil || bytes.Equal(ct, ct2) {
		t.Fatalf("Enclave.Rewrap = %v", err)
	}
	if _, err := c.Rewrap(ctx, name, res[0].Ciphertext, []byte("x")); !errors.Is(err, api.ErrDecrypt) {
		t.Fatalf("Rewrap with another context: %v", err)
	}
	if _, err := c.Batch(ctx, make([]api.BatchItem, 1001)); err == nil {
		t.Fatal("Batch of 1001 items: no error")
	}
}
