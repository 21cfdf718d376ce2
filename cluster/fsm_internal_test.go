package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage"
)

// TestFSMBadCommand feeds the FSM log entries that no client could propose,
// as a newer node or a damaged log could: it must answer with an error, keep
// going and consume the entries.
func TestFSMBadCommand(t *testing.T) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "state.db"), bytes.Repeat([]byte{1}, 32), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f := &fsm{store: store, logger: slog.New(slog.DiscardHandler)}

	unknownKind, _ := EncodeCommand(Command{Type: CommandChange, Change: storage.Change{
		Apply: []storage.Mutation{{Kind: 42, Bucket: "b", Name: "n"}},
	}})
	for i, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"Empty", nil, ErrCommand},
		{"UnknownType", []byte{200, 1, 0, 0}, ErrCommand},
		{"UnknownVersion", []byte{1, 9, 0, 0}, ErrCommand},
		{"Garbage", []byte{1, 1, 0xff, 0xff}, ErrCommand},
		{"UnknownMutation", unknownKind, storage.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: tc.data})
			if err, _ := resp.(error); !errors.Is(err, tc.want) {
				t.Errorf("Apply = %v, want %v", resp, tc.want)
			}
		})
	}
	if got := store.AppliedIndex(); got != 5 {
		t.Errorf("AppliedIndex = %d, want 5 (the readable bad change is consumed)", got)
	}
}

func TestHCLogArgsRenderFormats(t *testing.T) {
	got := hclogArgs([]any{"servers", hclog.Fmt("%+v", []int{1, 2}), "n", 3})
	if got[1] != "[1 2]" || got[3] != 3 {
		t.Fatalf("hclogArgs = %#v", got)
	}
}
