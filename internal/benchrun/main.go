// Command benchrun is make bench: it starts a local three-node development
// cluster and the baseline server (minkms bench baseline, a bare HTTPS
// server with the same mutual TLS that decodes the request JSON and answers
// a fixed response), runs the standard scenarios of minkms bench against
// both, and prints one table of operations per second, p99 latency and
// server CPU time per request, each also as a ratio to the baseline. It
// writes the table to -out as well.
//
// Every row compared with the baseline is measured in -rounds pairs, a
// baseline run right before each run of the row, and reports the medians
// and the median ratio, with the lowest and highest ratio of the pairs: on
// a shared machine the load moves between runs minutes apart, and a ratio
// of two runs seconds apart is steadier than either figure.
//
//	go run ./internal/benchrun -bin bin/minkms -out bench-results.txt
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/minkms", "the minkms binary")
	out := flag.String("out", "bench-results.txt", "file to write the table to")
	duration := flag.Duration("duration", 5*time.Second, "measured time per scenario")
	warmup := flag.Duration("warmup", time.Second, "warm-up per scenario")
	concurrency := flag.Int("concurrency", 64, "concurrent clients")
	http1 := flag.Bool("http1", false, "HTTP/1.1 clients rather than the SDK's HTTP/2")
	only := flag.String("only", "", "run only the scenarios whose name matches this regular expression")
	rounds := flag.Int("rounds", 3, "pairs of baseline and minkms runs per row compared with the baseline")
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "benchrun: -rounds must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{bin: *bin, duration: *duration, warmup: *warmup, concurrency: *concurrency, http1: *http1, rounds: *rounds}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun: -only:", err)
			os.Exit(2)
		}
		r.only = re
	}
	if err := r.run(ctx, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

type runner struct {
	bin         string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	http1       bool
	rounds      int            // baseline and minkms pairs per compared row
	only        *regexp.Regexp // nil: every scenario
}

// cluster is what minkms server --dev --nodes 3 --json prints.
type cluster struct {
	Servers []string `json:"servers"`
	APIKey  string   `json:"api_key"`
	CAFile  string   `json:"ca_file"`
	Nodes   []struct {
		PID int `json:"pid"`
	} `json:"nodes"`
}

// baseline is what minkms bench baseline prints.
type baseline struct {
	Server string `json:"server"`
	CAFile string `json:"ca_file"`
	PID    int    `json:"pid"`
}

// scenario is one row of the table.
type scenario struct {
	name     string
	op       string
	identity string
	allNodes bool // against every node, else the first
	batch    int  // items per request; 0 or 1: single requests
}

var scenarios = []scenario{
	{"generate 32 B, admin, one node", "generate", "admin", false, 0},
	{"generate 32 B, admin, three nodes", "generate", "admin", true, 0},
	{"generate 32 B, policy user, one node", "generate", "user", false, 0},
	{"generate×100 32 B, admin, one node", "generate", "admin", false, 100},
	{"encrypt 32 B, admin, one node", "encrypt", "admin", false, 0},
	{"encrypt 32 B, admin, three nodes", "encrypt", "admin", true, 0},
	{"decrypt 32 B, admin, one node", "decrypt", "admin", false, 0},
	{"decrypt 32 B, admin, three nodes", "decrypt", "admin", true, 0},
	{"create, admin, three nodes", "create", "admin", true, 0},
}

// result is what one minkms bench --json run reports for its operation.
type result struct {
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	LatencyMS struct {
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
	FirstError string    `json:"first_error"`
	CPU        float64   `json:"server_cpu_us_per_op"`
	CPUEach    []float64 `json:"server_cpu_us_per_op_each"` // per process, in the order of --cpu-pid
}

// servingCPU is the CPU per operation of the processes that served the
// requests: against one node, that node's alone (the first of the PIDs),
// else all of them.
func (r result) servingCPU(oneNode bool) float64 {
	if oneNode && len(r.CPUEach) > 0 {
		return r.CPUEach[0]
	}
	return r.CPU
}

func (r *runner) run(ctx context.Context, outFile string) error {
	base, err := freeBasePort()
	if err != nil {
		return err
	}
	var c cluster
	stopCluster, err := r.start(ctx, &c, "server", "--dev", "--nodes", "3", "--bench-setup", "--base-port", strconv.Itoa(base), "--json")
	if err != nil {
		return fmt.Errorf("start the cluster: %w", err)
	}
	defer stopCluster()
	var b baseline
	stopBaseline, err := r.start(ctx, &b, "bench", "baseline")
	if err != nil {
		return fmt.Errorf("start the baseline: %w", err)
	}
	defer stopBaseline()
	var nodePIDs []int
	for _, n := range c.Nodes {
		nodePIDs = append(nodePIDs, n.PID)
	}

	var table bytes.Buffer
	proto := "HTTP/2"
	if r.http1 {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&table, "minkms bench: %d concurrent %s clients, %s per scenario after %s of warm-up, on this machine (%s)\n",
		r.concurrency, proto, r.duration, r.warmup, machine())
	fmt.Fprintf(&table, "clients, the three nodes and the baseline on the same machine (load average before the run: %s);\n", loadAverage())
	fmt.Fprintf(&table, "server CPU = user+system time of the serving processes / requests: the baseline, the node that served (one node) or all three;\n")
	fmt.Fprintf(&table, "all nodes = the three nodes' CPU together, the idle ones' heartbeats included;\n")
	fmt.Fprintf(&table, "each row compared with the baseline: the medians of %d pairs of runs, a baseline run right before each, and the median ratio (lowest–highest of the pairs)\n\n", r.rounds)
	fmt.Fprintln(&table, "| scenario | server | ops/s | p99 | server CPU µs/op | all nodes µs/op | ops/s vs baseline | CPU vs baseline |")
	fmt.Fprintln(&table, "|---|---|---:|---:|---:|---:|---:|---:|")
	shownBaseline := map[string]bool{}
	unbatched := map[string]float64{} // per operation: ops/s of its first single-request row, against one node
	for _, s := range scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.only != nil && !r.only.MatchString(s.name) {
			continue
		}
		servers := c.Servers[:1]
		if s.allNodes {
			servers = c.Servers
		}
		if s.batch > 1 {
			// The baseline answers no batches: the row compares the data
			// keys per second with the same operation unbatched.
			fmt.Fprintf(os.Stderr, "%s ...\n", s.name)
			m, err := r.bench(ctx, s.op, s.identity, s.batch, servers, c.CAFile, c.APIKey, nodePIDs)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			vs := "–"
			if u, ok := unbatched[s.op]; ok {
				vs = fmt.Sprintf("%.1f× unbatched", m.OpsPerSec/u)
			}
			fmt.Fprintf(&table, "| %s | minkms | %.0f | %.2f ms | %.1f | %.1f | %s | – |\n",
				s.name, m.OpsPerSec, m.LatencyMS.P99, m.servingCPU(!s.allNodes), m.CPU, vs)
			continue
		}
		var bls, ms []result
		var opsRatio, cpuRatio []float64
		for i := range r.rounds {
			fmt.Fprintf(os.Stderr, "baseline %s, then %s (%d/%d) ...\n", s.op, s.name, i+1, r.rounds)
			bl, err := r.bench(ctx, s.op, "admin", 0, []string{b.Server}, b.CAFile, c.APIKey, []int{b.PID})
			if err != nil {
				return fmt.Errorf("baseline %s: %w", s.op, err)
			}
			m, err := r.bench(ctx, s.op, s.identity, s.batch, servers, c.CAFile, c.APIKey, nodePIDs)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			bls, ms = append(bls, bl), append(ms, m)
			opsRatio = append(opsRatio, m.OpsPerSec/bl.OpsPerSec)
			cpuRatio = append(cpuRatio, m.servingCPU(!s.allNodes)/bl.CPU)
		}
		if !shownBaseline[s.op] {
			shownBaseline[s.op] = true
			fmt.Fprintf(&table, "| %s (baseline) | baseline | %.0f | %.2f ms | %.1f | – | 1.00× | 1.00× |\n", s.op,
				median(bls, func(r result) float64 { return r.OpsPerSec }),
				median(bls, func(r result) float64 { return r.LatencyMS.P99 }),
				median(bls, func(r result) float64 { return r.CPU }))
		}
		opsPerSec := median(ms, func(r result) float64 { return r.OpsPerSec })
		if _, ok := unbatched[s.op]; !ok && !s.allNodes && s.identity == "admin" {
			unbatched[s.op] = opsPerSec
		}
		fmt.Fprintf(&table, "| %s | minkms | %.0f | %.2f ms | %.1f | %.1f | %s | %s |\n", s.name, opsPerSec,
			median(ms, func(r result) float64 { return r.LatencyMS.P99 }),
			median(ms, func(m result) float64 { return m.servingCPU(!s.allNodes) }),
			median(ms, func(r result) float64 { return r.CPU }),
			ratio(opsRatio), ratio(cpuRatio))
	}
	os.Stdout.Write(table.Bytes())
	if err := os.WriteFile(outFile, table.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the results: %w", err)
	}
	fmt.Fprintf(os.Stderr, "written to %s\n", outFile)
	return nil
}

// median returns the median of f over rs (the mean of the middle two of an
// even number).
func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return medianOf(v)
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ratio formats the median of ratios and, of more than one, their range.
func ratio(v []float64) string {
	if len(v) == 1 {
		return fmt.Sprintf("%.2f×", v[0])
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", medianOf(v), slices.Min(v), slices.Max(v))
}

// bench runs minkms bench --json for one operation and returns its result.
func (r *runner) bench(ctx context.Context, op, identity string, batch int, servers []string, caFile, apiKey string, pids []int) (result, error) {
	args := []string{"bench", "--json", "--op", op, "--identity", identity, "--batch", strconv.Itoa(max(batch, 1)),
		"--concurrency", strconv.Itoa(r.concurrency), "--duration", r.duration.String(), "--warmup", r.warmup.String(),
		"--size", "32", "--server", strings.Join(servers, ","), "--cacert", caFile}
	for _, pid := range pids {
		args = append(args, "--cpu-pid", strconv.Itoa(pid))
	}
	if r.http1 {
		args = append(args, "--http1")
	}
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = append(os.Environ(), "MINKMS_API_KEY="+apiKey) // not on the command line, which ps shows
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, err
	}
	var report struct {
		Results []result `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || len(report.Results) != 1 {
		return result{}, fmt.Errorf("unexpected output of minkms bench: %q", stdout.String())
	}
	res := report.Results[0]
	if res.Errors > 0 {
		return result{}, fmt.Errorf("%d of %d requests failed, the first with: %s", res.Errors, res.Requests, res.FirstError)
	}
	return res, nil
}

// start runs minkms with args, decodes the JSON document it prints first
// into v and returns a function that stops it.
func (r *runner) start(ctx context.Context, v any, args ...string) (func(), error) {
	cmd := exec.Command(r.bin, args...)
	logFile, err := os.CreateTemp("", "minkms-benchrun-*.log")
	if err != nil {
		return nil, err
	}
	os.Remove(logFile.Name()) // read back through the open file only
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	decoded := make(chan error, 1)
	go func() {
		decoded <- json.NewDecoder(bufio.NewReader(stdout)).Decode(v)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-decoded:
	case <-time.After(60 * time.Second):
		err = errors.New("no JSON on stdout within 60s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		stop()
		log := make([]byte, 4096)
		st, _ := logFile.Stat()
		n, _ := logFile.ReadAt(log, max(0, st.Size()-int64(len(log))))
		logFile.Close()
		return nil, fmt.Errorf("%w: %s", err, log[:n])
	}
	return func() { stop(); logFile.Close() }, nil
}

// freeBasePort returns a port N such that the API and peer ports of three
// development nodes, N, N+1, N+10, N+11, N+20 and N+21, were free a moment
// ago.
func freeBasePort() (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(30000)
		free := true
		for _, off := range []int{0, 1, 10, 11, 20, 21} {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off)))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("found no free ports for the cluster")
}

// machine describes the CPU: nproc and the model of /proc/cpuinfo.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// loadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, which tell whether something else ran on the machine.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
