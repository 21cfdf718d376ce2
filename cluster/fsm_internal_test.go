package cluster

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/kv"
)

func newTestFSM(t *testing.T) (*fsm, *storage.DB, chan struct{}) {
	store, err := storage.Open(filepath.Join(t.TempDir(), "state.db"), bytes.Repeat([]byte{1}, 32), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	stop := make(chan struct{})
	return &fsm{store: store, logger: slog.New(slog.DiscardHandler), applied: newIndexWatch(0), stop: stop}, store, stop
}

// TestFSMInvalidChange feeds the FSM changes that decode but are not well
// formed, as a damaged log could hold: each is answered with ErrInvalid and
// consumed, the same way on every node.
func TestFSMInvalidChange(t *testing.T) {
	f, store, _ := newTestFSM(t)
	unknownKind, _ := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{
		Apply: []kv.Mutation{{Kind: 42, Bucket: "b", Name: "n"}},
	}})
	// A name bbolt cannot store: before storage refused it as invalid, the
	// write error made the FSM panic, on every node and at every replay.
	longName, _ := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{
		Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: strings.Repeat("n", 40000), Value: []byte("v")}},
	}})
	resp := f.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: unknownKind},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: longName},
		{Index: 3, Term: 2, Type: raft.LogConfiguration},
	})
	for i, r := range resp[:2] {
		if err, _ := r.(error); !errors.Is(err, kv.ErrInvalid) {
			t.Errorf("response %d = %v, want ErrInvalid", i, r)
		}
	}
	if resp[2] != nil {
		t.Errorf("configuration entry answered %v", resp[2])
	}
	if index, term := store.Applied(); index != 3 || term != 2 {
		t.Errorf("Applied = %d/%d, want 3/2 (the entries are consumed)", index, term)
	}
	if got, _ := f.applied.get(); got != 3 {
		t.Errorf("FSM index = %d, want 3", got)
	}
}

// TestFSMUnknownCommandHalts: an entry of a type or version this build does
// not know must not be skipped (the replicas would diverge): the FSM stops
// applying, says why, and returns only when the node stops.
func TestFSMUnknownCommandHalts(t *testing.T) {
	for name, data := range map[string][]byte{
		"Empty":          nil,
		"UnknownType":    {200, 1, 0, 0},
		"UnknownVersion": {1, 9, 0, 0},
		"Garbage":        {1, 1, 0xff, 0xff},
		// A node report of a newer layout halts like any other entry.
		"UnknownReportVersion": {2, 9, 2, 'n', '1', 1, 'x'},
	} {
		t.Run(name, func(t *testing.T) {
			f, store, stop := newTestFSM(t)
			done := make(chan []any)
			go func() { done <- f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: data}}) }()
			deadline := time.Now().Add(5 * time.Second)
			for f.Halted() == nil {
				if time.Now().After(deadline) {
					t.Fatal("the FSM did not report that it halted")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !errors.Is(f.Halted(), ErrCommand) {
				t.Errorf("Halted() = %v, want ErrCommand", f.Halted())
			}
			select {
			case <-done:
				t.Fatal("the FSM went on past an entry it cannot read")
			default:
			}
			close(stop)
			resp := <-done
			if err, _ := resp[0].(error); !errors.Is(err, ErrCommand) {
				t.Errorf("response = %v, want ErrCommand", resp[0])
			}
			if index, _ := store.Applied(); index != 0 {
				t.Errorf("Applied = %d, want 0: the entry must stay unapplied", index)
			}
		})
	}
}

func TestHCLogArgsRenderFormats(t *testing.T) {
	got := hclogArgs([]any{"servers", hclog.Fmt("%+v", []int{1, 2}), "n", 3})
	if got[1] != "[1 2]" || got[3] != 3 {
		t.Fatalf("hclogArgs = %#v", got)
	}
}

// TestFSMAppliesReports: a node report is applied in the same batch as the
// changes around it, as a Put of the report under the node's id.
func TestFSMAppliesReports(t *testing.T) {
	f, store, _ := newTestFSM(t)
	sealed, err := store.Seal(nodesBucket, "n1", []byte(`{"node_id":"n1"}`))
	if err != nil {
		t.Fatal(err)
	}
	report, _ := EncodeCommand(Command{Type: CommandNodeReport, Report: SealedReport{NodeID: "n1", Value: sealed}})
	v, _ := store.Seal("b", "k", []byte("v"))
	change, _ := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: "k", Value: v}}}})
	resp := f.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: change},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: report},
	})
	for i, r := range resp {
		if r != nil {
			t.Errorf("response %d = %v", i, r)
		}
	}
	e, err := store.Get(nodesBucket, "n1")
	if err != nil || string(e.Value) != `{"node_id":"n1"}` {
		t.Errorf("the report in the state = %q, %v", e.Value, err)
	}
	if index, _ := store.Applied(); index != 2 {
		t.Errorf("Applied = %d, want 2", index)
	}
}

// TestFSMOnApply: the FSM tells OnApply what the applied changes of a batch
// mutated, at the batch's last index, before ApplyBatch returns (so before
// any proposer is answered) and before the applied index moves; a change
// whose precondition failed mutated nothing and is not reported.
func TestFSMOnApply(t *testing.T) {
	f, _, _ := newTestFSM(t)
	type call struct {
		index   uint64
		changed []kv.Mutation
		applied uint64 // the FSM's index when OnApply ran
	}
	var calls []call
	f.onApply = func(index uint64, changed []kv.Mutation) {
		applied, _ := f.applied.get()
		calls = append(calls, call{index, changed, applied})
	}
	put := func(name string, require ...kv.Condition) []byte {
		b, err := EncodeCommand(Command{Type: CommandChange, Change: kv.Change{
			Require: require,
			Apply:   []kv.Mutation{{Kind: kv.Put, Bucket: "b", Name: name, Value: []byte("v")}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resp := f.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: put("one")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: put("two", kv.Condition{Kind: kv.MustExist, Bucket: "b", Name: "missing"})},
		{Index: 3, Term: 1, Type: raft.LogConfiguration},
	})
	if resp[1] == nil {
		t.Fatal("the change with a failed precondition was applied")
	}
	if len(calls) != 1 {
		t.Fatalf("OnApply called %d times, want 1", len(calls))
	}
	c := calls[0]
	if c.index != 3 || len(c.changed) != 1 || c.changed[0].Name != "one" || c.applied != 0 {
		t.Errorf("OnApply(%d, %v) at applied index %d, want (3, [one]) at 0", c.index, c.changed, c.applied)
	}

	// A batch that changes nothing reports nothing.
	f.ApplyBatch([]*raft.Log{{Index: 4, Term: 1, Type: raft.LogConfiguration}})
	if len(calls) != 1 {
		t.Errorf("OnApply called for a batch without changes")
	}

	// A restore reports the index the state is now at.
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.(fsmSnapshot).snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	restored := uint64(0)
	f.onRestore = func(index uint64) { restored = index }
	if err := f.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if restored != 4 {
		t.Errorf("OnRestore(%d), want 4", restored)
	}
}
