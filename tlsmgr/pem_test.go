package tlsmgr

import (
	"bytes"
	"encoding/pem"
	"testing"
)

// FuzzDecodePEM: the strict reader never panics, and what it accepts is a
// sequence of whole blocks that encode back to the same blocks.
func FuzzDecodePEM(f *testing.F) {
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not really DER")})
	f.Add(block)
	f.Add(append(bytes.Clone(block), block...))
	f.Add(block[:len(block)/2])
	f.Add(append(bytes.Clone(block), "trailing"...))
	f.Add(append([]byte("leading\n"), block...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n" + string(block)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := decodePEM(data)
		if err != nil {
			return
		}
		var re []byte
		for _, b := range blocks {
			re = append(re, pem.EncodeToMemory(b)...)
		}
		again, err := decodePEM(re)
		if err != nil || len(again) != len(blocks) {
			t.Fatalf("re-encoded blocks do not decode: %v (%d vs %d)", err, len(again), len(blocks))
		}
		for i := range blocks {
			if blocks[i].Type != again[i].Type || !bytes.Equal(blocks[i].Bytes, again[i].Bytes) {
				t.Fatalf("block %d changed", i)
			}
		}
	})
}

func TestDecodePEMRejects(t *testing.T) {
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})
	broken := []byte("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"Truncated", block[:len(block)-10]},
		{"Trailing", append(bytes.Clone(block), "x"...)},
		{"Leading", append([]byte("x\n"), block...)},
		{"BrokenThenGood", append(broken, block...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodePEM(tc.data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
