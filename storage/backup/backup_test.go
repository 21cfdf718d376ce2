package backup_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/storage/backup"
)

// MustBackup returns a backup of state.
func MustBackup(tb testing.TB, state []byte) ([]byte, backup.Header) {
	tb.Helper()
	sum := sha256.Sum256(state)
	h := backup.Header{
		ClusterID: "c-1", NodeID: "n1", RootKeyCheck: hex.EncodeToString([]byte("check")),
		Index: 42, Term: 3, Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		StateSize: int64(len(state)), StateSHA256: hex.EncodeToString(sum[:]),
	}
	var buf bytes.Buffer
	if err := backup.WriteHeader(&buf, h); err != nil {
		tb.Fatalf("WriteHeader: %v", err)
	}
	buf.Write(state)
	h.Format = backup.Format
	return buf.Bytes(), h
}

// read reads a whole backup and returns its header and state.
func read(b []byte) (backup.Header, []byte, error) {
	r := bytes.NewReader(b)
	h, err := backup.ReadHeader(r)
	if err != nil {
		return h, nil, err
	}
	state, err := io.ReadAll(backup.NewReader(r, h))
	return h, state, err
}

func TestRoundTrip(t *testing.T) {
	state := bytes.Repeat([]byte("state file "), 1000)
	b, want := MustBackup(t, state)
	h, got, err := read(b)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if h != want {
		t.Errorf("header = %+v, want %+v", h, want)
	}
	if !bytes.Equal(got, state) {
		t.Error("state differs")
	}
	if !h.SameRootKey([]byte("check")) || h.SameRootKey([]byte("other")) {
		t.Error("SameRootKey does not compare the check value")
	}
}

func TestInvalid(t *testing.T) {
	state := bytes.Repeat([]byte{7}, 4096)
	b, _ := MustBackup(t, state)
	headerEnd := len(b) - len(state)
	change := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"Empty", nil, "reading the header"},
		{"WrongMagic", change(func(b []byte) []byte { b[0] = 'X'; return b }), "does not start with"},
		{"HugeHeader", change(func(b []byte) []byte { b[8] = 0xff; return b }), "header length"},
		{"TruncatedHeader", b[:headerEnd-10], "reading the header"},
		{"TamperedHeader", []byte(strings.Replace(string(b), `"index":42`, `"index":43`, 1)), "checksum"},
		{"TruncatedState", b[:len(b)-1], "truncated"},
		{"NoState", b[:headerEnd], "truncated"},
		{"TamperedState", change(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "SHA-256"},
		{"TrailingBytes", append(bytes.Clone(b), 0), "follow the state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(tt.data)
			if !errors.Is(err, backup.ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("read = %v; want ErrFormat saying %q", err, tt.want)
			}
		})
	}
}

func TestWriteHeaderRefusesIncomplete(t *testing.T) {
	err := backup.WriteHeader(io.Discard, backup.Header{ClusterID: "c"})
	if !errors.Is(err, backup.ErrFormat) {
		t.Fatalf("WriteHeader of a header without size or digest = %v, want ErrFormat", err)
	}
}
