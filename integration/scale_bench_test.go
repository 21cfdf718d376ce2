package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minkms/minkms/api"
)

// BenchmarkHundredThousandKeys is the scale figure of issue 10: 100,000
// keys in one enclave of a one-node cluster (default raft settings, so
// snapshots are taken as in production), created by 64 concurrent SDK
// clients. It reports how long `minkms key ls` (the CLI, following the
// continuation marks page by page) takes to print them all, how long the
// node takes from its start to ready after a SIGTERM and after a SIGKILL,
// and its resident memory (VmRSS, and the peak VmHWM) after the creates,
// after the listing and after each restart. Targets: under 5 s, under
// 10 s, under 300 MiB.
//
//	go test -run '^$' -bench HundredThousandKeys -benchtime 1x -timeout 30m ./integration/
//
// MINKMS_SCALE_KEYS sets the key count (default 100000); with
// MINKMS_PROFILE_DIR set, the node's heap profile (debug.pprof is on) is
// written there after each step, for `go tool pprof`.
func BenchmarkHundredThousandKeys(b *testing.B) {
	keys := 100000
	if v, err := strconv.Atoi(os.Getenv("MINKMS_SCALE_KEYS")); err == nil && v > 0 {
		keys = v
	}
	cacheKeys, _ := strconv.Atoi(os.Getenv("MINKMS_SCALE_CACHE"))
	c := MustStartCluster(b, 1, ClusterOptions{Configure: func(_ *ClusterNode, cfg *NodeConfig) {
		cfg.Debug.PProf = true
		cfg.Log.Level = "info"
		cfg.Cache.MaxKeys = cacheKeys
	}})
	n := c.Node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		client := c.Client()
		wg.Go(func() {
			for k := next.Add(1); k <= int64(keys); k = next.Add(1) {
				if err := client.CreateKey(ctx, fmt.Sprintf("k-%07d", k)); err != nil {
					if failed.Add(1) == 1 {
						b.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d creates failed", f, keys)
	}
	created := time.Since(start)
	b.Logf("created %d keys in %v (%.0f/s)", keys, created.Round(time.Millisecond), float64(keys)/created.Seconds())
	// ResetTimer drops the metrics reported so far: these wait for the end.
	var report []func()
	creates := float64(keys) / created.Seconds()
	report = append(report, func() { b.ReportMetric(creates, "creates/s") }, scaleMemory(b, c, n, "created"))

	b.ResetTimer()
	for range b.N {
		start = time.Now()
		res := c.CLI(n, "key", "ls")
		elapsed := time.Since(start)
		if res.Code != 0 {
			b.Fatalf("minkms key ls: exit %d: %s", res.Code, res.Stderr)
		}
		if got := strings.Count(res.Stdout, "\n"); got != keys {
			b.Fatalf("minkms key ls printed %d names, want %d", got, keys)
		}
		b.ReportMetric(elapsed.Seconds(), "s/ls")
		b.Logf("minkms key ls: %d names in %v", keys, elapsed.Round(time.Millisecond))
	}
	b.StopTimer()
	scaleMemory(b, c, n, "listed")()
	for _, r := range report {
		r()
	}

	// Use every key once (a data key from each), so that the key cache is
	// as full as cache.max_keys lets it be: one request per key, then
	// again in batches of 1,000 (64 batches in flight at once).
	scaleTouch(b, c, keys, 1)
	scaleMemory(b, c, n, "used")()
	scaleTouch(b, c, keys, 1000)
	scaleMemory(b, c, n, "used-batched")()

	for _, how := range []string{"sigterm", "sigkill"} {
		if how == "sigterm" {
			c.Stop(1)
		} else {
			c.Kill(1)
		}
		offset := n.Log.Len()
		start = time.Now()
		c.StartNode(n)
		c.WaitNodeReady(n, 5*time.Minute)
		elapsed := time.Since(start)
		// After a SIGKILL the time includes the check of the state file
		// that a node runs after an unclean stop.
		line := LogLine(n.Log.Since(offset), "state file is intact")
		if checked := line != ""; checked != (how == "sigkill") {
			b.Errorf("after %s the node checked its state file: %v", how, checked)
		} else if checked {
			b.Logf("after %s: %s", how, line)
		}
		b.ReportMetric(elapsed.Seconds(), "s/restart-"+how)
		b.Logf("restart after %s: ready in %v", how, elapsed.Round(time.Millisecond))
		scaleMemory(b, c, n, "restart-"+how)()
	}
	// The restarted node still has every key.
	res := c.CLI(n, "key", "ls")
	if got := strings.Count(res.Stdout, "\n"); res.Code != 0 || got != keys {
		b.Fatalf("after the restarts minkms key ls printed %d names (exit %d), want %d: %s", got, res.Code, keys, res.Stderr)
	}
	scaleMemory(b, c, n, "final")()
}

// scaleTouch asks for a data key from each of the keys k-0000001 to
// k-<keys> over 64 clients: one request per key (size 1), or in batches.
func scaleTouch(b *testing.B, c *Cluster, keys int, size int64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		client := c.Client()
		wg.Go(func() {
			for u := next.Add(1) - 1; u*size < int64(keys); u = next.Add(1) - 1 {
				if size == 1 {
					if _, err := client.GenerateKey(ctx, fmt.Sprintf("k-%07d", u+1), nil); err != nil && failed.Add(1) == 1 {
						b.Error(err)
					}
					continue
				}
				var items []api.BatchItem
				for k := u*size + 1; k <= min((u+1)*size, int64(keys)); k++ {
					items = append(items, api.BatchItem{Op: api.BatchGenerate, Name: fmt.Sprintf("k-%07d", k)})
				}
				res, err := client.Batch(ctx, items)
				for i := range res {
					if err == nil {
						err = res[i].Err()
					}
				}
				if err != nil && failed.Add(1) == 1 {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
	b.Logf("a data key from each of %d keys (batches of %d) in %v", keys, size, time.Since(start).Round(time.Millisecond))
}

// scaleMemory reports n's resident memory (VmRSS) and its peak so far
// (VmHWM) in MiB, and writes its heap profile to $MINKMS_PROFILE_DIR. It
// reads them now and returns the call that reports them.
func scaleMemory(b *testing.B, c *Cluster, n *ClusterNode, step string) func() {
	b.Helper()
	rss, hwm, detail := procMemory(b, n.PID())
	report := func() {
		b.ReportMetric(rss, "MiB-rss-"+step)
		b.ReportMetric(hwm, "MiB-peak-"+step)
	}
	b.Logf("%s: VmRSS %.1f MiB, VmHWM %.1f MiB (%s)", step, rss, hwm, detail)
	if dir := os.Getenv("MINKMS_PROFILE_DIR"); dir != "" {
		var heap string
		if err := c.adminRequestText(n, "/debug/pprof/heap", &heap); err != nil {
			b.Fatalf("heap profile: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "heap-"+step+".pprof"), []byte(heap), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return report
}

// procMemory reads VmRSS and VmHWM of process pid from /proc, in MiB, and
// the parts of the resident set (anonymous memory, the mapped state file
// and binary) as text.
func procMemory(b *testing.B, pid int) (rss, hwm float64, detail string) {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		field, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.HasPrefix(field, "Rss") {
			detail += field + " " + strings.Join(strings.Fields(value), " ") + " "
		}
		if !ok || (field != "VmRSS" && field != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			b.Fatalf("/proc/%d/status: %s: %v", pid, sc.Text(), err)
		}
		if field == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return rss, hwm, strings.TrimSpace(detail)
}
