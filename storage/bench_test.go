package storage_test

import (
	"fmt"
	"testing"

	"github.com/minkms/minkms/storage/kv"
)

// Reads unseal a value; applies are one fsynced bbolt transaction each.
//
//	go test -run '^$' -bench . ./storage/
func BenchmarkStorage(b *testing.B) {
	db := MustOpenTemp(b)
	MustPut(b, db, 1, "enclaves/default/keys", "k", string(make([]byte, 512)))
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.Get("enclaves/default/keys", "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Apply", func(b *testing.B) {
		index := uint64(1)
		for b.Loop() {
			index++
			name := fmt.Sprintf("k%d", index)
			sealed := MustSeal(b, db, "enclaves/default/keys", name, "value")
			c := kv.Change{
				Require: []kv.Condition{{Kind: kv.MustNotExist, Bucket: "enclaves/default/keys", Name: name}},
				Apply:   []kv.Mutation{{Kind: kv.Put, Bucket: "enclaves/default/keys", Name: name, Value: sealed}},
			}
			if err := db.Apply(index, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
