package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// checkAuditJSON fails unless appendAuditJSON encodes rec exactly as
// json.Marshal does.
func checkAuditJSON(t *testing.T, rec api.AuditRecord) {
	t.Helper()
	want, wantErr := json.Marshal(rec)
	got, err := appendAuditJSON([]byte("prefix"), &rec)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("error %v, json.Marshal's %v", err, wantErr)
	}
	if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Errorf("appendAuditJSON:\n%s\njson.Marshal:\n%s", got[len("prefix"):], want)
	}
}

// TestAuditJSON: an audit line is byte for byte what encoding/json would
// write, whatever the record holds: empty fields left out, escapes, HTML
// characters, invalid UTF-8, line separators, batch counts.
func TestAuditJSON(t *testing.T) {
	at := time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC)
	for _, rec := range []api.AuditRecord{
		{},
		{Time: at, Node: "n1"},
		{Time: at.In(time.FixedZone("x", 3600)), Node: "n1", Seq: 7, RequestID: "abc", Identity: "3f2a", Enclave: "default",
			Action: "key:generate", Object: "my-key", Method: "PUT", Path: "/v1/enclaves/default/keys/my-key/generate",
			Status: 200, Duration: 1234567, Remote: "127.0.0.1:5000"},
		{Time: at, Node: "n\"1\\", Path: "/a<b>&c\n\r\t\b\f\x00\x1f\x7f", Object: "\xff\xfe ok \u2028\u2029 é 日本"},
		{Time: at, Notice: "lost", Message: "records lost", Lost: 12, Status: -1, Duration: -5},
		{Time: at, Batch: map[string]int{"key:encrypt": 100, "key:decrypt": 3}},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		checkAuditJSON(t, rec)
	}
}

func FuzzAuditJSON(f *testing.F) {
	f.Add("n1", "/v1/key/<x>", "k\xff", int64(5), 200, uint64(1))
	f.Fuzz(func(t *testing.T, node, path, object string, nanos int64, status int, seq uint64) {
		checkAuditJSON(t, api.AuditRecord{Time: time.Unix(0, nanos).UTC(), Node: node, Path: path, Object: object,
			Status: status, Seq: seq, Duration: time.Duration(nanos)})
	})
}

func BenchmarkAuditJSON(b *testing.B) {
	rec := api.AuditRecord{Time: time.Now(), Node: "n1", Seq: 7, RequestID: "0123456789abcdef",
		Identity: "3f2a9c0b1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8", Enclave: "default",
		Action: "key:generate", Object: "bench-key-3", Method: "PUT", Path: "/v1/enclaves/default/keys/bench-key-3/generate",
		Status: 200, Duration: 123456, Remote: "127.0.0.1:50123"}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendAuditJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = appendAuditJSON(buf[:0], &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
