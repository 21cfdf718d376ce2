package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// The batch and rewrap figures of issue 10, through a real node process
// (one node, log level info, the audit trail to a file in the background)
// with 64 concurrent keep-alive clients on the same machine:
//
//	go test -run '^$' -bench 'BatchGenerate' -benchtime 200000x ./integration/
//	go test -run '^$' -bench 'RewrapMillion' -benchtime 1x -timeout 20m ./integration/
//
// BenchmarkBatchGenerate reports data keys per second unbatched and in
// batches of 100 (target: at least 10 times); BenchmarkRewrapMillion the
// time to rewrap 1,000,000 data keys in batches of 1,000 (target: under 2
// minutes).

// mustStartBenchNode starts a node as the benchmarks want it.
func mustStartBenchNode(b *testing.B) *Node {
	n := MustNewNode(b, NodeOptions{})
	cfg, err := os.ReadFile(n.Config)
	if err != nil {
		b.Fatal(err)
	}
	audit := filepath.Join(n.Dir, "audit.log")
	s := strings.Replace(string(cfg), "  level: debug\n", "  level: info\n  audit_file: "+audit+"\n", 1)
	if err := os.WriteFile(n.Config, []byte(s), 0o600); err != nil {
		b.Fatal(err)
	}
	n.MustStart()
	return n
}

const (
	benchClients  = 64
	rewrapClients = 8
)

// spread runs work on benchClients goroutines, each with its own client,
// until next hands out more than total units; it returns the failures.
func spread(b *testing.B, n *Node, clients int, total int64, per int64, work func(c *api.Client, unit int64) error) int64 {
	all := make([]*api.Client, clients)
	for i := range all {
		all[i] = n.Client(n.AdminKey)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for {
				u := next.Add(1) - 1
				if u*per >= total {
					return
				}
				if err := work(all[i], u); err != nil {
					if failed.Add(1) == 1 {
						b.Log(err)
					}
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

func BenchmarkBatchGenerate(b *testing.B) {
	n := mustStartBenchNode(b)
	ctx := context.Background()
	if err := n.Client(n.AdminKey).CreateKey(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			items := make([]api.BatchItem, size)
			for i := range items {
				items[i] = api.BatchItem{Op: api.BatchGenerate, Name: "bench"}
			}
			cpu0 := nodeCPU(b, n)
			b.ResetTimer()
			failed := spread(b, n, benchClients, int64(b.N), int64(size), func(c *api.Client, _ int64) error {
				if size == 1 {
					_, err := c.GenerateKey(ctx, "bench", nil)
					return err
				}
				res, err := c.Batch(ctx, items)
				if err == nil {
					err = res[0].Err()
				}
				return err
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
			b.ReportMetric(float64((nodeCPU(b, n)-cpu0).Microseconds())/float64(b.N), "server-µs/key")
			if failed > 0 {
				b.Errorf("%d requests failed", failed)
			}
		})
	}
}

func BenchmarkRewrapMillion(b *testing.B) {
	const total, size = 1_000_000, 1000
	n := mustStartBenchNode(b)
	ctx := context.Background()
	if err := n.Client(n.AdminKey).CreateKey(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	cts := make([][]byte, total)
	gen := make([]api.BatchItem, size)
	for i := range gen {
		gen[i] = api.BatchItem{Op: api.BatchGenerate, Name: "bench"}
	}
	start := time.Now()
	if failed := spread(b, n, benchClients, total, size, func(c *api.Client, u int64) error {
		res, err := c.Batch(ctx, gen)
		if err != nil {
			return err
		}
		for i, r := range res {
			cts[int(u)*size+i] = r.Ciphertext
		}
		return nil
	}); failed > 0 {
		b.Fatalf("generating: %d batches failed", failed)
	}
	b.Logf("generated %d data keys in %v", total, time.Since(start).Round(time.Millisecond))
	if _, err := n.Client(n.AdminKey).Enclave("default").RotateKey(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	cpu0 := nodeCPU(b, n)
	for range b.N {
		b.ResetTimer()
		// Fewer clients than for single requests: each batch is 1,000
		// operations of CPU, and 64 of them at once on 2 cores would only
		// queue (and could pass the request timeout).
		failed := spread(b, n, rewrapClients, total, size, func(c *api.Client, u int64) error {
			items := make([]api.BatchItem, size)
			for i := range items {
				items[i] = api.BatchItem{Op: api.BatchRewrap, Name: "bench", Ciphertext: cts[int(u)*size+i]}
			}
			res, err := c.Batch(ctx, items)
			if err != nil {
				return err
			}
			for _, r := range res {
				if err := r.Err(); err != nil {
					return err
				}
			}
			return nil
		})
		b.StopTimer()
		if failed > 0 {
			b.Fatalf("rewrap: %d batches failed", failed)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/million")
	b.ReportMetric(float64((nodeCPU(b, n)-cpu0).Microseconds())/float64(total*b.N), "server-µs/key")
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "keys/s")
}

// nodeCPU returns the CPU time (user and system) the node's process has
// used so far, from /proc (Linux; 0 elsewhere).
func nodeCPU(b *testing.B, n *Node) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
