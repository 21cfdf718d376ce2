package cluster_test

import (
	"context"
	"fmt"
	"testing"
)

// One write through a single-node raft: seal, encode, append to the raft
// log (fsync), apply to the state file (fsync).
//
//	go test -run '^$' -bench . ./cluster/
func BenchmarkPropose(b *testing.B) {
	dir := b.TempDir()
	n := MustNode(b, dir, MustStore(b, dir), nil)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := n.Propose(ctx, put(fmt.Sprintf("k%d", i), "value")); err != nil {
			b.Fatal(err)
		}
	}
}
