package integration_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
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

// BenchmarkRestart measures how long a node takes to become ready again
// after a SIGKILL with many log entries since its last snapshot (none is
// taken: the threshold is out of reach and a killed node takes none on its
// way out), which it replays at start; entries it had applied before cost
// reads only. MINKMS_RESTART_ENTRIES sets the count (default 200000):
//
//	go test -run '^$' -bench Restart -benchtime 1x -timeout 20m ./integration/
func BenchmarkRestart(b *testing.B) {
	entries := 200000
	if v, err := strconv.Atoi(os.Getenv("MINKMS_RESTART_ENTRIES")); err == nil && v > 0 {
		entries = v
	}
	c := MustStartCluster(b, 1, ClusterOptions{Formation: FormBootstrapFirstOnly, Raft: RaftOptions{
		SnapshotThreshold: 1 << 30, SnapshotInterval: 24 * time.Hour, TrailingLogs: 1 << 30,
	}})
	client := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for k := next.Add(1); k <= int64(entries); k = next.Add(1) {
				if err := client.CreateKey(ctx, fmt.Sprintf("r-%d", k)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for range b.N {
		c.Kill(1)
		start := time.Now()
		c.StartNode(c.Node(1))
		c.WaitNodeReady(c.Node(1), 10*time.Minute)
		b.ReportMetric(time.Since(start).Seconds(), "s/restart")
	}
	b.ReportMetric(float64(entries), "entries")
}
