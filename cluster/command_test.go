package cluster_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/storage"
)

func sampleChange() storage.Change {
	return storage.Change{
		Require: []storage.Condition{
			{Kind: storage.MustNotExist, Bucket: "enclaves/default/keys", Name: "k1"},
			{Kind: storage.AtRevision, Bucket: "enclaves", Name: "default", Revision: 1 << 40},
		},
		Apply: []storage.Mutation{
			{Kind: storage.Put, Bucket: "enclaves/default/keys", Name: "k1", Value: []byte("sealed bytes\x00\xff")},
			{Kind: storage.Delete, Bucket: "enclaves/default/keys", Name: "k0"},
			{Kind: storage.DeleteBucket, Bucket: "enclaves/old"},
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
		change storage.Change
	}{
		{"Empty", storage.Change{}},
		{"OnlyConditions", storage.Change{Require: sampleChange().Require}},
		{"OnlyMutations", storage.Change{Apply: sampleChange().Apply}},
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

func TestDecodeCommandErrors(t *testing.T) {
	valid := MustEncode(t, cluster.Command{Type: cluster.CommandChange, Change: sampleChange()})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"Empty", nil},
		{"OnlyType", []byte{1}},
		{"UnknownType", append([]byte{2}, valid[1:]...)},
		{"TypeZero", append([]byte{0}, valid[1:]...)},
		{"UnknownVersion", append([]byte{1, 2}, valid[2:]...)},
		{"NoBody", valid[:2]},
		{"Truncated", valid[:len(valid)-1]},
		{"Trailing", append(bytes.Clone(valid), 0)},
		{"HugeCount", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"HugeLength", []byte{1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}},
		{"BadVarint", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := cluster.DecodeCommand(tc.data); !errors.Is(err, cluster.ErrCommand) {
				t.Errorf("DecodeCommand = %+v, %v; want ErrCommand", c, err)
			}
		})
	}
	t.Run("EncodeUnknownType", func(t *testing.T) {
		if _, err := cluster.EncodeCommand(cluster.Command{Type: 7}); !errors.Is(err, cluster.ErrCommand) {
			t.Errorf("EncodeCommand(type 7) = %v, want ErrCommand", err)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(MustEncode(f, cluster.Command{Type: cluster.CommandChange, Change: sampleChange()}))
	f.Add(MustEncode(f, cluster.Command{Type: cluster.CommandChange}))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 1})
	f.Add([]byte{2, 1, 0, 0})
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
