package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/minkms/minkms/api"
)

func init() {
	extraCommands = append(extraCommands, (*cli).benchCommand)
}

// benchOp is one operation minkms bench can measure. New operations (such
// as rewrap, or batched variants) are added to benchOps.
type benchOp struct {
	name    string
	actions []string // the policy actions a user identity needs
	// setup prepares what the operation needs (as the admin identity),
	// before the clock starts; may be nil.
	setup func(ctx context.Context, b *benchRun) error
	// do sends one request from worker w; seq counts the worker's requests.
	do func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error
}

// batchItem is the batch item of one op, for --batch.
func (b *benchRun) batchItem(op string, w *benchWorker, seq uint64) (api.BatchItem, bool) {
	i := b.keyIndex(w, seq)
	switch op {
	case "generate":
		return api.BatchItem{Op: op, Name: b.keys[i], Length: b.size}, true
	case "encrypt":
		return api.BatchItem{Op: op, Name: b.keys[i], Plaintext: b.payload}, true
	case "decrypt", "rewrap":
		return api.BatchItem{Op: op, Name: b.keys[i], Ciphertext: b.ciphertexts[i]}, true
	case "hmac":
		return api.BatchItem{Op: op, Name: b.keys[i], Message: b.payload}, true
	}
	return api.BatchItem{}, false
}

// sendBatch sends one batch of n items of op from worker w; an item that
// failed makes the request count as an error.
func (b *benchRun) sendBatch(ctx context.Context, op string, w *benchWorker, seq uint64, n int) error {
	items := make([]api.BatchItem, n)
	for j := range items {
		it, ok := b.batchItem(op, w, seq*uint64(n)+uint64(j))
		if !ok {
			return fmt.Errorf("%s cannot be batched", op)
		}
		items[j] = it
	}
	res, err := w.e.Batch(ctx, items)
	if err != nil {
		return err
	}
	for _, r := range res {
		if err := r.Err(); err != nil {
			return err
		}
	}
	return nil
}

// benchOps are the operations in the order the table lists them.
var benchOps = []*benchOp{
	{name: "generate", actions: []string{"key:generate"}, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		_, err := w.e.GenerateKey(ctx, b.key(w, seq), nil, b.size)
		return err
	}},
	{name: "encrypt", actions: []string{"key:encrypt"}, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		_, err := w.e.Encrypt(ctx, b.key(w, seq), b.payload, nil)
		return err
	}},
	{name: "decrypt", actions: []string{"key:decrypt"}, setup: encryptPayload, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		i := b.keyIndex(w, seq)
		_, err := w.e.Decrypt(ctx, b.keys[i], b.ciphertexts[i], nil)
		return err
	}},
	{name: "hmac", actions: []string{"key:hmac"}, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		_, err := w.e.HMAC(ctx, b.key(w, seq), b.payload)
		return err
	}},
	{name: "rewrap", actions: []string{"key:rewrap"}, setup: encryptPayload, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		i := b.keyIndex(w, seq)
		_, err := w.e.Rewrap(ctx, b.keys[i], b.ciphertexts[i], nil)
		return err
	}},
	{name: "create", actions: []string{"key:create"}, do: func(ctx context.Context, b *benchRun, w *benchWorker, seq uint64) error {
		_, err := w.e.CreateKey(ctx, fmt.Sprintf("bench-%s-%d-%d", b.runID, w.id, seq), nil)
		return err
	}},
}

func benchOpNames() []string {
	names := make([]string, len(benchOps))
	for i, op := range benchOps {
		names[i] = op.name
	}
	return names
}

func findBenchOp(name string) *benchOp {
	for _, op := range benchOps {
		if op.name == name {
			return op
		}
	}
	return nil
}

// benchOptions are the flags of minkms bench.
type benchOptions struct {
	ops         []string
	concurrency int
	duration    time.Duration
	requests    uint64
	size        int
	batch       int // items per request; 1: the single routes
	keys        int
	identity    string
	warmup      time.Duration
	progress    time.Duration // how often the progress line is redrawn
	cpuPIDs     []int         // server processes whose CPU time each measurement reads (make bench)
	http1       bool          // HTTP/1.1 rather than the SDK's HTTP/2
}

// benchRun is one run of minkms bench.
type benchRun struct {
	opts        benchOptions
	runID       string
	size        int // data key length for generate, payload length otherwise
	payload     []byte
	keys        []string
	ciphertexts [][]byte // of payload, per key (decrypt)
	admin       *api.Enclave
	workers     []*benchWorker
}

// benchWorker is one concurrent client with its own connection.
type benchWorker struct {
	id     int
	client *api.Client
	e      *api.Enclave
	hist   histogram
	errs   atomic.Uint64
}

func (b *benchRun) keyIndex(w *benchWorker, seq uint64) int {
	return int((uint64(w.id) + seq) % uint64(len(b.keys)))
}

func (b *benchRun) key(w *benchWorker, seq uint64) string { return b.keys[b.keyIndex(w, seq)] }

func encryptPayload(ctx context.Context, b *benchRun) error {
	if b.ciphertexts != nil {
		return nil
	}
	b.ciphertexts = make([][]byte, len(b.keys))
	for i, k := range b.keys {
		ct, err := b.admin.Encrypt(ctx, k, b.payload, nil)
		if err != nil {
			return fmt.Errorf("encrypt the payload for decrypt under %s: %w", k, err)
		}
		b.ciphertexts[i] = ct
	}
	return nil
}

// benchResult is one row of the table (and of --json).
type benchResult struct {
	Op         string       `json:"op"`
	Requests   uint64       `json:"requests"`
	Errors     uint64       `json:"errors"`
	BatchItems int          `json:"batch_items,omitempty"` // items per request with --batch; ops/s counts items
	Seconds    float64      `json:"seconds"`
	OpsPerSec  float64      `json:"ops_per_sec"`
	LatencyMS  benchLatency `json:"latency_ms"`
	FirstError string       `json:"first_error,omitempty"`
	// ServerCPUSeconds is the CPU time (user and system) the processes of
	// --cpu-pid spent while the operation was measured, and
	// ServerCPUMicrosPerOp that time per request.
	ServerCPUSeconds     float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUMicrosPerOp float64 `json:"server_cpu_us_per_op,omitempty"`
	// ServerCPUMicrosPerOpEach splits ServerCPUMicrosPerOp by process, in
	// the order of --cpu-pid: against one node of a cluster, the node that
	// serves and the others (their heartbeats) apart.
	ServerCPUMicrosPerOpEach []float64 `json:"server_cpu_us_per_op_each,omitempty"`
}

type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

type benchReport struct {
	Endpoints   []string      `json:"endpoints"`
	Enclave     string        `json:"enclave"`
	Identity    string        `json:"identity"`
	Concurrency int           `json:"concurrency"`
	Size        int           `json:"size"`
	Keys        int           `json:"keys"`
	HTTP        string        `json:"http"`
	Results     []benchResult `json:"results"`
}

func (c *cli) benchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the throughput and latency of the servers",
		Long: `Bench sends requests to the servers (--server, every endpoint, spread
evenly: client i starts at endpoint i mod n) from --concurrency clients,
each with its own keep-alive connection, for --duration or until
--requests requests per operation are sent, one operation after the
other. It prints a table of requests, errors, operations per second and
latency percentiles per operation; --json prints one JSON document.

Operations (--op, comma-separated): ` + strings.Join(benchOpNames(), ", ") + `.
generate, encrypt, decrypt and hmac use --keys keys named bench-key-0, ...
(created if missing, kept afterwards); create makes a new key per request
(bench-RUN-WORKER-N; the keys stay). --size is the payload for encrypt,
decrypt and hmac and the data key length for generate.

--identity user measures an application identity: bench creates a policy
that allows exactly the measured operations on bench-* and a fresh
identity with that policy, runs as it and removes both at the end. The
API key must be an admin of the enclave.

While it runs on a terminal, a line on stderr shows the rate, the errors
and the 99th percentile so far.`,
		Example: `  minkms bench --op generate,encrypt,decrypt --concurrency 64 --duration 10s
  minkms bench --op create --requests 10000 --json
  minkms bench --op encrypt --identity user --size 1024`,
		Args: cobra.NoArgs,
	}
	enclave := enclaveFlag(cmd)
	f := cmd.Flags()
	f.StringSliceVar(&o.ops, "op", []string{"generate"}, "operations to measure, comma-separated: "+strings.Join(benchOpNames(), ", "))
	f.IntVarP(&o.concurrency, "concurrency", "c", 64, "concurrent clients, each with its own connection")
	f.DurationVarP(&o.duration, "duration", "d", 10*time.Second, "how long to measure each operation")
	f.Uint64VarP(&o.requests, "requests", "n", 0, "send this many requests per operation instead of running for --duration")
	f.IntVar(&o.size, "size", 32, "payload size in bytes (generate: data key length)")
	f.IntVar(&o.keys, "keys", 16, "number of keys the requests are spread over")
	f.IntVar(&o.batch, "batch", 1, "items per request: with N > 1, generate, encrypt, decrypt, hmac and rewrap are sent as batches of N (POST /v1/enclaves/{enclave}/batch); ops/s then counts items")
	f.StringVar(&o.identity, "identity", "admin", "who sends the requests: admin (the API key) or user (a new identity with a policy)")
	f.DurationVar(&o.warmup, "warmup", time.Second, "run each operation this long before measuring")
	f.BoolVar(&o.http1, "http1", false, "send HTTP/1.1 requests rather than HTTP/2, the SDK's default")
	f.IntSliceVar(&o.cpuPIDs, "cpu-pid", nil, "server process IDs whose CPU time per request to report (Linux, same machine)")
	f.MarkHidden("cpu-pid")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.progress = 250 * time.Millisecond
		if err := o.check(); err != nil {
			return err
		}
		if o.http1 {
			// net/http reads GODEBUG when a transport is first used.
			if err := os.Setenv("GODEBUG", strings.Trim(os.Getenv("GODEBUG")+",http2client=0", ",")); err != nil {
				return err
			}
		}
		admin, err := c.client(cmd)
		if err != nil {
			return err
		}
		defer admin.CloseIdleConnections()
		report, err := c.runBench(cmd, admin, enclave(cmd), o)
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, report)
		}
		return writeBenchTable(c.stdout, report.Results)
	}
	cmd.AddCommand(c.benchBaselineCommand())
	return cmd
}

func (o *benchOptions) check() error {
	if len(o.ops) == 0 {
		return errors.New("--op names no operation")
	}
	for _, name := range o.ops {
		if findBenchOp(name) == nil {
			return fmt.Errorf("--op: unknown operation %q: use %s", name, strings.Join(benchOpNames(), ", "))
		}
	}
	switch {
	case o.concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.requests == 0 && o.duration <= 0:
		return errors.New("--duration must be positive (or set --requests)")
	case o.size < 1 || o.size > 1<<20:
		return errors.New("--size must be between 1 and 1048576 bytes")
	case o.keys < 1:
		return errors.New("--keys must be at least 1")
	case o.batch < 1 || o.batch > api.MaxBatchItems:
		return fmt.Errorf("--batch must be between 1 and %d", api.MaxBatchItems)
	case o.batch > 1 && slices.Contains(o.ops, "create"):
		return errors.New("--batch: create cannot be batched (batches hold generate, encrypt, decrypt, hmac and rewrap)")
	case o.warmup < 0:
		return errors.New("--warmup must not be negative")
	case o.identity != "admin" && o.identity != "user":
		return fmt.Errorf("--identity: %q is neither admin nor user", o.identity)
	}
	return nil
}

// runBench prepares the keys (and the user identity), then measures each
// operation in turn.
func (c *cli) runBench(cmd *cobra.Command, admin *api.Client, enclave string, o benchOptions) (*benchReport, error) {
	ctx := cmd.Context()
	id := make([]byte, 4)
	rand.Read(id)
	b := &benchRun{opts: o, runID: hex.EncodeToString(id), size: o.size, admin: admin.Enclave(enclave)}
	b.payload = make([]byte, o.size)
	rand.Read(b.payload)
	var ops []*benchOp
	for _, name := range o.ops {
		if op := findBenchOp(name); !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	for i := range o.keys {
		name := fmt.Sprintf("bench-key-%d", i)
		if _, err := b.admin.CreateKey(ctx, name, nil); err != nil && !errors.Is(err, api.ErrKeyExists) {
			return nil, fmt.Errorf("create the bench key %s: %w", name, err)
		}
		b.keys = append(b.keys, name)
	}
	for _, op := range ops {
		if op.setup != nil {
			if err := op.setup(ctx, b); err != nil {
				return nil, err
			}
		}
	}

	var key *api.APIKey
	if o.identity == "user" {
		k, cleanup, err := b.newUser(ctx, admin, ops)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		key = k
	} else {
		var err error
		if key, err = c.benchKey(cmd); err != nil {
			return nil, err
		}
	}
	endpoints := admin.Endpoints()
	for i := range o.concurrency {
		// Client i starts at endpoint i mod n and fails over to the next.
		n := i % len(endpoints)
		rotated := append(append([]string(nil), endpoints[n:]...), endpoints[:n]...)
		client, err := c.clientAs(cmd, rotated, key)
		if err != nil {
			return nil, err
		}
		defer client.CloseIdleConnections()
		b.workers = append(b.workers, &benchWorker{id: i, client: client, e: client.Enclave(enclave)})
	}

	report := &benchReport{Endpoints: endpoints, Enclave: enclave, Identity: o.identity,
		Concurrency: o.concurrency, Size: o.size, Keys: o.keys, HTTP: "2"}
	if o.http1 {
		report.HTTP = "1.1"
	}
	progress := c.progressWriter()
	for _, op := range ops {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		report.Results = append(report.Results, b.measure(ctx, op, progress))
	}
	return report, nil
}

// benchKey returns the API key of the global flags.
func (c *cli) benchKey(cmd *cobra.Command) (*api.APIKey, error) {
	text := c.apiKey
	if !cmd.Flags().Changed("api-key") {
		text = env(envAPIKey)
	}
	return api.ParseAPIKey(text)
}

// newUser creates a policy allowing the operations on bench-* and a fresh
// identity with it; cleanup removes both.
func (b *benchRun) newUser(ctx context.Context, admin *api.Client, ops []*benchOp) (*api.APIKey, func(), error) {
	key, err := api.GenerateAPIKey()
	if err != nil {
		return nil, nil, err
	}
	policy := &api.Policy{Allow: map[string][]string{}}
	for _, op := range ops {
		for _, a := range op.actions {
			policy.Allow[a] = []string{"bench-*"}
		}
	}
	name := "bench-" + b.runID
	if _, err := b.admin.CreatePolicy(ctx, name, policy, false); err != nil {
		return nil, nil, fmt.Errorf("create the bench policy: %w", err)
	}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		b.admin.DeleteIdentity(ctx, key.Identity())
		b.admin.DeletePolicy(ctx, name)
	}
	v, err := admin.Version(ctx)
	if err == nil && v.ClusterID == "" {
		err = errors.New("the server does not know its cluster id yet")
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read the cluster id: %w", err)
	}
	proof, err := key.IdentityProof(v.ClusterID, b.admin.Name(), 0)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if _, err := b.admin.CreateIdentity(ctx, key.Identity(), &api.CreateIdentityRequest{Policy: name, Proof: proof}); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("create the bench identity: %w", err)
	}
	return key, cleanup, nil
}

// progressWriter returns stderr if it is a terminal, else nil.
func (c *cli) progressWriter() io.Writer {
	if f, ok := c.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// measure runs op on every worker: first --warmup unrecorded, then for
// --duration or --requests recorded.
func (b *benchRun) measure(ctx context.Context, op *benchOp, progress io.Writer) benchResult {
	var seq atomic.Uint64 // request numbers, shared so that create names stay unique per worker
	if b.opts.warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, b.opts.warmup)
		b.drive(wctx, op, &seq, 0, nil)
		cancel()
	}
	for _, w := range b.workers {
		w.hist = histogram{}
		w.errs.Store(0)
	}
	mctx, cancel := ctx, context.CancelFunc(func() {})
	if b.opts.requests == 0 {
		mctx, cancel = context.WithTimeout(ctx, b.opts.duration)
	}
	defer cancel()

	var firstErr atomic.Pointer[string]
	cpu0, cpuErr := processCPU(b.opts.cpuPIDs)
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	if progress != nil {
		wg.Go(func() {
			t := time.NewTicker(b.opts.progress)
			defer t.Stop()
			for {
				select {
				case <-done:
					fmt.Fprint(progress, "\r\033[K")
					return
				case <-t.C:
					var h histogram
					var errs uint64
					for _, w := range b.workers {
						h.merge(&w.hist)
						errs += w.errs.Load()
					}
					el := time.Since(start)
					fmt.Fprintf(progress, "\r\033[K%-9s %5.1fs  %9d ok  %10.0f/s  %d errors  p99 %s",
						op.name, el.Seconds(), h.count(), float64(h.count())/el.Seconds(), errs, fmtLatency(h.quantile(0.99)))
				}
			}
		})
	}
	b.drive(mctx, op, &seq, b.opts.requests, &firstErr)
	elapsed := time.Since(start)
	cpu1, err := processCPU(b.opts.cpuPIDs)
	if cpuErr == nil {
		cpuErr = err
	}
	close(done)
	wg.Wait()

	var h histogram
	var errs uint64
	for _, w := range b.workers {
		h.merge(&w.hist)
		errs += w.errs.Load()
	}
	r := benchResult{Op: op.name, Requests: h.count() + errs, Errors: errs, Seconds: elapsed.Seconds()}
	items := uint64(max(b.opts.batch, 1)) // per request
	if items > 1 {
		r.Op = fmt.Sprintf("%s×%d", op.name, items)
		r.BatchItems = int(items)
	}
	if len(b.opts.cpuPIDs) > 0 && cpuErr == nil && r.Requests > 0 {
		var total time.Duration
		for i := range cpu0 {
			d := cpu1[i] - cpu0[i]
			total += d
			r.ServerCPUMicrosPerOpEach = append(r.ServerCPUMicrosPerOpEach, float64(d)/1e3/float64(r.Requests*items))
		}
		r.ServerCPUSeconds = total.Seconds()
		r.ServerCPUMicrosPerOp = float64(total) / 1e3 / float64(r.Requests*items)
	}
	if elapsed > 0 {
		r.OpsPerSec = float64(h.count()*items) / elapsed.Seconds() // items: a batch counts each
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.LatencyMS = benchLatency{P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(time.Duration(h.max.Load()))}
	if p := firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	return r
}

// drive runs op on every worker until ctx ends or, if limit > 0, limit
// requests were sent, split evenly over the workers. It records the
// latencies and errors in the workers, and the first error in firstErr,
// unless firstErr is nil (the warm-up).
func (b *benchRun) drive(ctx context.Context, op *benchOp, seq *atomic.Uint64, limit uint64, firstErr *atomic.Pointer[string]) {
	var wg sync.WaitGroup
	n := uint64(len(b.workers))
	for i, w := range b.workers {
		quota := limit / n
		if uint64(i) < limit%n {
			quota++
		}
		wg.Go(func() {
			for sent := uint64(0); ctx.Err() == nil; sent++ {
				if limit > 0 && sent >= quota {
					return
				}
				t0 := time.Now()
				var err error
				if b.opts.batch > 1 {
					err = b.sendBatch(ctx, op.name, w, seq.Add(1), b.opts.batch)
				} else {
					err = op.do(ctx, b, w, seq.Add(1))
				}
				d := time.Since(t0)
				if firstErr == nil {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return // cut off by the end of the run or an interrupt, not an error of the server
					}
					w.errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				w.hist.record(d)
			}
		})
	}
	wg.Wait()
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func writeBenchTable(w io.Writer, results []benchResult) error {
	t := newTable(w, "OP", "REQUESTS", "ERRORS", "OPS/S", "P50", "P90", "P99", "P99.9", "MAX")
	ms := func(v float64) string { return fmtLatency(time.Duration(v * 1e6)) }
	for _, r := range results {
		t.row(r.Op, r.Requests, r.Errors, fmt.Sprintf("%.0f", r.OpsPerSec),
			ms(r.LatencyMS.P50), ms(r.LatencyMS.P90), ms(r.LatencyMS.P99), ms(r.LatencyMS.P999), ms(r.LatencyMS.Max))
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			if _, err := fmt.Fprintf(w, "%s: first error: %s\n", r.Op, r.FirstError); err != nil {
				return err
			}
		}
	}
	return nil
}

// processCPU returns the CPU time, user and system, that each of the
// processes has used so far, from /proc/PID/stat (Linux). Its resolution
// is a clock tick, 10 ms.
func processCPU(pids []int) ([]time.Duration, error) {
	total := make([]time.Duration, len(pids))
	for i, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
		}
		// The command name, in parentheses, may hold spaces: the fields
		// after it start with the state (field 3); utime and stime are
		// fields 14 and 15.
		end := strings.LastIndexByte(string(data), ')')
		fields := strings.Fields(string(data[end+1:]))
		if end < 0 || len(fields) < 13 {
			return nil, fmt.Errorf("read the CPU time of process %d: unexpected /proc/%d/stat", pid, pid)
		}
		for _, f := range fields[11:13] {
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
			}
			total[i] += time.Duration(ticks) * time.Second / clockTicks
		}
	}
	return total, nil
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100
