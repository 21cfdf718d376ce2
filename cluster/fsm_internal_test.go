package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
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

	unknownKind, _ := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{
		Apply: []kv.Mutation{{Kind: 42, Bucket: "b", Name: "n"}},
	}})
	// A name bbolt cannot store: before storage refused it as invalid, the
	// write error made the FSM panic, on every node and at every replay.
	longName, _ := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{
		Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: strings.Repeat("n", 40000), Value: []byte("v")}},
	}})
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"Empty", nil, ErrCommand},
		{"UnknownType", []byte{200, 1, 0, 0}, ErrCommand},
		{"UnknownVersion", []byte{1, 9, 0, 0}, ErrCommand},
		{"Garbage", []byte{1, 1, 0xff, 0xff}, ErrCommand},
		{"UnknownMutation", unknownKind, kv.ErrInvalid},
		{"LongName", longName, kv.ErrInvalid},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: tc.data})
			if err, _ := resp.(error); !errors.Is(err, tc.want) {
				t.Errorf("Apply = %v, want %v", resp, tc.want)
			}
		})
	}
	if got := store.AppliedIndex(); got != uint64(len(cases)) {
		t.Errorf("AppliedIndex = %d, want %d (the readable bad changes are consumed)", got, len(cases))
	}
}

func TestHCLogArgsRenderFormats(t *testing.T) {
	got := hclogArgs([]any{"servers", hclog.Fmt("%+v", []int{1, 2}), "n", 3})
	if got[1] != "[1 2]" || got[3] != 3 {
		t.Fatalf("hclogArgs = %#v", got)
	}
}
