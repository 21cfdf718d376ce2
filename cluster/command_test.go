package cluster_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage/kv"
)

func sampleChange() kv.Change {
	return kv.Change{
		Require: []kv.Condition{
			{Kind: kv.MustNotExist, Bucket: "enclaves/default/keys", Name: "k1", Code: "key-exists"},
			{Kind: kv.AtRevision, Bucket: "enclaves", Name: "default", Revision: 1 << 40},
		},
		Apply: []kv.Mutation{
			{Kind: kv.Put, Bucket: "enclaves/default/keys", Name: "k1", Value: []byte("sealed bytes\x00\xff")},
			{Kind: kv.Delete, Bucket: "enclaves/default/keys", Name: "k0"},
			{Kind: kv.DeleteBucket, Bucket: "enclaves/old"},
		},
	}
}

func MustEncode(tb testing.TB, c cluster.Command) []byte {
	tb.Helper()
	b, err := cluster.EncodeCommand(c)
	if err != nil {
		tb.Fatalf("EncodeCommand: %v", err)
	}
	return b
}

func TestCommandRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change kv.Change
	}{
		{"Empty", kv.Change{}},
		{"OnlyConditions", kv.Change{Require: sampleChange().Require}},
		{"OnlyMutations", kv.Change{Apply: sampleChange().Apply}},
		{"Full", sampleChange()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cluster.Command{Type: cluster.CommandChange, Change: tc.change}
			out, err := cluster.DecodeCommand(MustEncode(t, in))
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("round trip = %+v, want %+v", out, in)
			}
		})
	}
}

// version1 is sampleChange as a build before condition codes wrote it: the
// change body of version 1, whose conditions have no code.
var version1 = []byte{
	1, 1, // CommandChange, version 1
	2, // conditions
	byte(kv.MustNotExist), 21, 'e', 'n', 'c', 'l', 'a', 'v', 'e', 's', '/', 'd', 'e', 'f', 'a', 'u', 'l', 't', '/', 'k', 'e', 'y', 's', 2, 'k', '1', 0,
	byte(kv.AtRevision), 8, 'e', 'n', 'c', 'l', 'a', 'v', 'e', 's', 7, 'd', 'e', 'f', 'a', 'u', 'l', 't', 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
	3, // mutations
	byte(kv.Put), 21, 'e', 'n', 'c', 'l', 'a', 'v', 'e', 's', '/', 'd', 'e', 'f', 'a', 'u', 'l', 't', '/', 'k', 'e', 'y', 's', 2, 'k', '1',
	14, 's', 'e', 'a', 'l', 'e', 'd', ' ', 'b', 'y', 't', 'e', 's', 0x00, 0xff,
	byte(kv.Delete), 21, 'e', 'n', 'c', 'l', 'a', 'v', 'e', 's', '/', 'd', 'e', 'f', 'a', 'u', 'l', 't', '/', 'k', 'e', 'y', 's', 2, 'k', '0', 0,
	byte(kv.DeleteBucket), 12, 'e', 'n', 'c', 'l', 'a', 'v', 'e', 's', '/', 'o', 'l', 'd', 0, 0,
}

// TestDecodeCommandVersion1: raft logs and snapshots of older builds hold
// version 1 bodies; they decode to the same change with no condition codes.
func TestDecodeCommandVersion1(t *testing.T) {
	want := sampleChange()
	for i := range want.Require {
		want.Require[i].Code = ""
	}
	got, err := cluster.DecodeCommand(version1)
	if err != nil {
		t.Fatalf("DecodeCommand(version 1) = %v", err)
	}
	if in := (cluster.Command{Type: cluster.CommandChange, Change: want}); !reflect.DeepEqual(got, in) {
		t.Errorf("DecodeCommand(version 1) = %+v, want %+v", got, in)
	}
	// This build writes version 2, which carries the codes.
	if b := MustEncode(t, cluster.Command{Type: cluster.CommandChange, Change: sampleChange()}); b[1] != 2 {
		t.Errorf("EncodeCommand wrote version %d, want 2", b[1])
	}
}

// sampleReport is a node report command of n1 as this build writes it:
// type 2, version 1, the node id and the sealed report.
var sampleReport = []byte{2, 1, 2, 'n', '1', 6, 's', 'e', 'a', 'l', 0x00, 0xff}

func TestReportCommand(t *testing.T) {
	in := cluster.Command{Type: cluster.CommandNodeReport, Report: cluster.SealedReport{NodeID: "n1", Value: []byte("seal\x00\xff")}}
	b := MustEncode(t, in)
	if !bytes.Equal(b, sampleReport) {
		t.Errorf("EncodeCommand(report) = %v, want %v", b, sampleReport)
	}
	out, err := cluster.DecodeCommand(b)
	if err != nil {
		t.Fatalf("DecodeCommand: %v", err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	// The FSM applies it as a Put of the report under the node's id in the
	// cluster's area of the nodes.
	want := kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: "cluster/nodes", Name: "n1", Value: []byte("seal\x00\xff")}}}
	if got := out.StateChange(); !reflect.DeepEqual(got, want) {
		t.Errorf("StateChange = %+v, want %+v", got, want)
	}
	if got := (cluster.Command{Type: cluster.CommandChange, Change: sampleChange()}).StateChange(); !reflect.DeepEqual(got, sampleChange()) {
		t.Errorf("StateChange of a change = %+v, want the change", got)
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	valid := MustEncode(t, cluster.Command{Type: cluster.CommandChange, Change: sampleChange()})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"Empty", nil},
		{"OnlyType", []byte{1}},
		{"UnknownType", append([]byte{3}, valid[1:]...)},
		{"TypeZero", append([]byte{0}, valid[1:]...)},
		{"UnknownVersion", append([]byte{1, 3}, valid[2:]...)},
		{"VersionZero", append([]byte{1, 0}, valid[2:]...)},
		{"Version1Truncated", version1[:len(version1)-1]},
		{"Version1Trailing", append(bytes.Clone(version1), 0)},
		{"NoBody", valid[:2]},
		{"Truncated", valid[:len(valid)-1]},
		{"Trailing", append(bytes.Clone(valid), 0)},
		{"HugeCount", []byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"HugeCodeLength", []byte{1, 2, 1, 1, 1, 'b', 1, 'n', 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}},
		{"HugeLength", []byte{1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}},
		{"BadVarint", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"ReportUnknownVersion", append([]byte{2, 2}, sampleReport[2:]...)},
		{"ReportVersionZero", append([]byte{2, 0}, sampleReport[2:]...)},
		{"ReportNoBody", sampleReport[:2]},
		{"ReportNoNodeID", []byte{2, 1, 0, 3, 'a', 'b', 'c'}},
		{"ReportTruncated", sampleReport[:len(sampleReport)-1]},
		{"ReportTrailing", append(bytes.Clone(sampleReport), 0)},
		{"ReportHugeLength", []byte{2, 1, 2, 'n', '1', 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := cluster.DecodeCommand(tc.data); !errors.Is(err, cluster.ErrCommand) {
				t.Errorf("DecodeCommand = %+v, %v; want ErrCommand", c, err)
			}
		})
	}
	t.Run("EncodeReportWithoutNodeID", func(t *testing.T) {
		if _, err := cluster.EncodeCommand(cluster.Command{Type: cluster.CommandNodeReport}); !errors.Is(err, cluster.ErrCommand) {
			t.Errorf("EncodeCommand(report without node id) = %v, want ErrCommand", err)
		}
	})
	t.Run("EncodeUnknownType", func(t *testing.T) {
		if _, err := cluster.EncodeCommand(cluster.Command{Type: 7}); !errors.Is(err, cluster.ErrCommand) {
			t.Errorf("EncodeCommand(type 7) = %v, want ErrCommand", err)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(MustEncode(f, cluster.Command{Type: cluster.CommandChange, Change: sampleChange()}))
	f.Add(MustEncode(f, cluster.Command{Type: cluster.CommandChange}))
	f.Add(bytes.Clone(version1))
	f.Add([]byte{1, 2, 1, 1, 1, 'b', 1, 'n', 0, 10, 'k', 'e', 'y', '-', 'e', 'x', 'i', 's', 't', 's', 0})
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1})
	f.Add([]byte{1, 2, 1})
	f.Add([]byte{2, 1, 0, 0})
	f.Add(bytes.Clone(sampleReport))
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cluster.DecodeCommand(data)
		if err != nil {
			if !errors.Is(err, cluster.ErrCommand) {
				t.Fatalf("DecodeCommand error %v does not wrap ErrCommand", err)
			}
			return
		}
		again, err := cluster.DecodeCommand(MustEncode(t, c))
		if err != nil {
			t.Fatalf("decoding a re-encoded command: %v", err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encoded command decodes to %+v, want %+v", again, c)
		}
	})
}
