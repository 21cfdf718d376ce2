package integration_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// BenchmarkCreateKey measures key creation through real processes with 64
// concurrent clients, each starting at another node (so followers forward),
// on a one-node cluster (the baseline: the same fsyncs, no replication) and
// on three nodes, in the same run on the same machine:
//
//	go test -run '^$' -bench CreateKey -benchtime 20000x ./integration/
func BenchmarkCreateKey(b *testing.B) {
	const clients = 64
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d/clients=%d", nodes, clients), func(b *testing.B) {
			c := MustStartCluster(b, nodes, ClusterOptions{})
			all := make([]*api.Client, clients)
			for i := range all {
				order := make([]*ClusterNode, 0, nodes)
				for j := range nodes {
					order = append(order, c.Nodes[(i+j)%nodes])
				}
				all[i] = c.ClientOf(order...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range clients {
				wg.Go(func() {
					for {
						k := next.Add(1)
						if k > int64(b.N) {
							return
						}
						if err := all[i].CreateKey(ctx, fmt.Sprintf("bench-%d", k)); err != nil {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			if f := failed.Load(); f > 0 {
				b.Errorf("%d of %d creates failed", f, b.N)
			}
		})
	}
}
