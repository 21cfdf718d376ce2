package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/minkms/minkms/api"
)

// The linearizability check: concurrent clients create, rotate, delete and
// describe a few keys through all three nodes while the leader is killed
// (SIGKILL) and restarted; every operation is recorded with its call and
// return time and the history, partitioned by key, is checked against a
// sequential model of one key with porcupine. A write whose outcome is
// unknown (the server's "outcome unknown", a dropped connection after the
// request was sent, a timeout) may or may not have taken effect: it is
// recorded with its return at the end of the run, so that the checker may
// place it anywhere after its call (placed last, it took no visible
// effect). A write that definitely failed (503: nothing was applied) and a
// read that got no answer are left out. After the run every node answers
// a consistent describe of every key, so a lost acknowledged write shows.
//
// Size: MINKMS_CHAOS_OPS operations (default 300) and MINKMS_CHAOS_KILLS
// leader kills (default 2); `make chaos` runs a long one.

// linOpKind is what an operation does to its key.
type linOpKind int

const (
	linCreate linOpKind = iota
	linRotate
	linDelete
	linDescribe
)

func (k linOpKind) String() string {
	return [...]string{"create", "rotate", "delete", "describe"}[k]
}

type linInput struct {
	Kind linOpKind
	Key  string
}

// linOutput is what the client saw. Unknown: the write may or may not have
// taken effect.
type linOutput struct {
	Unknown  bool
	NotFound bool // rotate, delete, describe: the key did not exist
	Exists   bool // create: the key existed already
	Version  int  // rotate: the new version; describe: the newest version
}

// keyState is the model's state of one key.
type keyState struct {
	Exists  bool
	Version int
}

// keyModel is the sequential specification of one key: create makes
// version 1 of a key that does not exist; rotate adds version+1; delete
// removes the key; describe tells whether it exists and its newest
// version.
var keyModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := make(map[string][]porcupine.Operation)
		var keys []string
		for _, op := range history {
			k := op.Input.(linInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return keyState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(keyState), input.(linInput), output.(linOutput)
		switch in.Kind {
		case linCreate:
			switch {
			case out.Unknown, !out.Exists:
				if !s.Exists {
					return true, keyState{Exists: true, Version: 1}
				}
				return out.Unknown, s // an unknown create of an existing key failed
			default:
				return s.Exists, s
			}
		case linRotate:
			switch {
			case out.Unknown:
				if s.Exists {
					return true, keyState{Exists: true, Version: s.Version + 1}
				}
				return true, s
			case out.NotFound:
				return !s.Exists, s
			default:
				return s.Exists && out.Version == s.Version+1, keyState{Exists: true, Version: out.Version}
			}
		case linDelete:
			switch {
			case out.Unknown:
				return true, keyState{}
			case out.NotFound:
				return !s.Exists, s
			default:
				return s.Exists, keyState{}
			}
		case linDescribe:
			if out.NotFound {
				return !s.Exists, s
			}
			return s.Exists && out.Version == s.Version, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		var res string
		switch {
		case out.Unknown:
			res = "unknown"
		case out.NotFound:
			res = "not found"
		case out.Exists:
			res = "exists"
		case in.Kind == linRotate || in.Kind == linDescribe:
			res = "v" + strconv.Itoa(out.Version)
		default:
			res = "ok"
		}
		return fmt.Sprintf("%s(%s) -> %s", in.Kind, in.Key, res)
	},
	DescribeState: func(state any) string {
		s := state.(keyState)
		if !s.Exists {
			return "absent"
		}
		return "v" + strconv.Itoa(s.Version)
	},
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}

// envInt reads a positive integer setting from the environment.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		tb.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return v
}

// history records operations from many clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation

	recorded, unknown, refused, unexpected atomic.Int64
	unexpectedMu                           sync.Mutex
	unexpectedErrs                         []string
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// unknownReturn marks an operation as returning at the end of the run;
// resolved in finish.
const unknownReturn = -1

func (h *history) add(client int, in linInput, call int64, out linOutput, ret int64, meta string) {
	if out.Unknown {
		ret = unknownReturn
		h.unknown.Add(1)
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
	h.mu.Unlock()
	h.recorded.Add(1)
}

func (h *history) noteUnexpected(in linInput, err error) {
	h.unexpected.Add(1)
	h.unexpectedMu.Lock()
	defer h.unexpectedMu.Unlock()
	if len(h.unexpectedErrs) < 10 {
		h.unexpectedErrs = append(h.unexpectedErrs, fmt.Sprintf("%s(%s): %v", in.Kind, in.Key, err))
	}
}

// finish gives every unknown operation the end of the run as its return.
func (h *history) finish() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.now()
	for i := range h.ops {
		if h.ops[i].Return == unknownReturn {
			h.ops[i].Return = end
		}
	}
	return append([]porcupine.Operation(nil), h.ops...)
}

// linClient is one client of the run: the SDK for writes and a consistent
// describe (?consistent=true, raw HTTP until the SDK offers it) for reads,
// both starting at its own node.
type linClient struct {
	id        int
	c         *Cluster
	sdk       *api.Client
	enclave   *api.Enclave
	endpoints []*ClusterNode
	http      *http.Client
	h         *history
}

// do runs one operation and records it.
func (lc *linClient) do(in linInput) (recorded bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := lc.h.now()
	var (
		out     linOutput
		err     error
		rotated *api.RotateKeyResponse
		info    *api.KeyInfo
	)
	switch in.Kind {
	case linCreate:
		_, err = lc.enclave.CreateKey(ctx, in.Key, nil)
	case linRotate:
		rotated, err = lc.enclave.RotateKey(ctx, in.Key)
	case linDelete:
		err = lc.enclave.DeleteKey(ctx, in.Key)
	case linDescribe:
		info, err = lc.describeConsistent(ctx, in.Key)
	}
	ret := lc.h.now()

	var apiErr *api.Error
	switch {
	case err == nil:
		switch in.Kind {
		case linRotate:
			out.Version = rotated.Version
		case linDescribe:
			out.Version = info.Version
		}
	case in.Kind == linCreate && errors.Is(err, api.ErrKeyExists):
		out.Exists = true
	case in.Kind != linCreate && errors.Is(err, api.ErrKeyNotFound):
		out.NotFound = true
	case isRetryable(err):
		lc.h.refused.Add(1)
		return false // nothing applied; nothing to record
	case in.Kind == linDescribe:
		if errors.As(err, &apiErr) {
			lc.h.noteUnexpected(in, err)
		}
		return false // a read without an answer tells nothing
	case isOutcomeUnknown(err):
		out.Unknown = true
	case errors.As(err, &apiErr):
		// No other answer is in the contract: note it, and treat it as
		// possibly applied so that the check still runs.
		lc.h.noteUnexpected(in, err)
		out.Unknown = true
	default:
		// A transport error or a timeout after the request was sent.
		out.Unknown = true
	}
	meta := ""
	if err != nil {
		meta = err.Error()
	}
	lc.h.add(lc.id, in, call, out, ret, meta)
	return true
}

// describeConsistent asks the client's nodes in turn for
// GET /v1/enclaves/default/keys/{name}?consistent=true, moving on after a
// transport error or a 503, as the SDK does.
func (lc *linClient) describeConsistent(ctx context.Context, name string) (*api.KeyInfo, error) {
	var errs []error
	for _, n := range lc.endpoints {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			n.URL+"/v1/enclaves/default/keys/"+url.PathEscape(name)+"?consistent=true", nil)
		if err != nil {
			return nil, err
		}
		resp, err := lc.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode == http.StatusOK {
			var info api.KeyInfo
			if err := json.Unmarshal(data, &info); err != nil {
				return nil, fmt.Errorf("%s: decoding %q: %w", n.ID, data, err)
			}
			return &info, nil
		}
		var e api.ErrorResponse
		_ = json.Unmarshal(data, &e)
		apiErr := &api.Error{Status: resp.StatusCode, Message: e.Message}
		if resp.StatusCode != http.StatusServiceUnavailable {
			return nil, apiErr
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.ID, apiErr))
	}
	return nil, fmt.Errorf("no node answered: %w", errors.Join(errs...))
}

// TestLinearizability runs the recorded chaos: see the comment at the top
// of this file.
func TestLinearizability(t *testing.T) {
	var (
		ops     = envInt(t, "MINKMS_CHAOS_OPS", 300)
		kills   = envInt(t, "MINKMS_CHAOS_KILLS", 2)
		clients = 6
		keys    = []string{"lin-a", "lin-b", "lin-c", "lin-d"}
	)
	t.Logf("linearizability run: %d operations, %d leader kills, %d clients, %d keys", ops, kills, clients, len(keys))
	c := MustStartCluster(t, 3, ClusterOptions{Raft: FastRaft()})
	h := &history{start: time.Now()}

	var (
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		started atomic.Int64
	)
	for id := range clients {
		nodes := rotated(c.Nodes, id)
		lc := &linClient{
			id: id, c: c, sdk: c.ClientOf(nodes...), endpoints: nodes,
			http: c.httpClient(c.AdminKey, 10*time.Second), h: h,
		}
		lc.enclave = lc.sdk.Enclave("default")
		rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
		wg.Go(func() {
			defer lc.http.CloseIdleConnections()
			for started.Add(1) <= int64(ops) {
				select {
				case <-stop:
					return
				default:
				}
				in := linInput{Key: keys[rng.IntN(len(keys))]}
				switch p := rng.IntN(100); {
				case p < 30:
					in.Kind = linCreate
				case p < 55:
					in.Kind = linRotate
				case p < 70:
					in.Kind = linDelete
				default:
					in.Kind = linDescribe
				}
				if !lc.do(in) {
					// Not recorded: it does not count. A short pause keeps a
					// client from spinning through a failover on 503s, as a
					// real application's retry policy would.
					started.Add(-1)
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients()

	// The kills, spread evenly over the run.
	budget := time.Minute + time.Duration(ops)*20*time.Millisecond + time.Duration(kills)*30*time.Second
	deadline := time.Now().Add(budget)
	for k := 1; k <= kills; k++ {
		at := int64(ops * k / (kills + 1))
		waitFor(t, time.Until(deadline), fmt.Sprintf("%d recorded operations before kill %d", at, k), func() bool {
			return h.recorded.Load() >= at
		})
		leader := c.Leader()
		killed := time.Now()
		c.Kill(leader.Index)
		var next *ClusterNode
		waitFor(t, 10*time.Second, "a new leader", func() bool {
			n, err := c.LeaderNow()
			next = n
			return err == nil && n != leader
		})
		newLeaderAfter := time.Since(killed)
		c.Restart(leader.Index)
		t.Logf("kill %d/%d at %d operations: leader %s killed, new leader %s after %v, %s restarted and ready after %v",
			k, kills, h.recorded.Load(), leader.ID, next.ID, newLeaderAfter.Round(time.Millisecond), leader.ID,
			time.Since(killed).Round(time.Millisecond))
	}
	waitFor(t, time.Until(deadline), fmt.Sprintf("%d recorded operations", ops), func() bool {
		return h.recorded.Load() >= int64(ops)
	})
	stopClients()

	// Every node, asked last, must agree with the history: no acknowledged
	// write is lost on any of them.
	c.WaitReady(30 * time.Second)
	for i, n := range c.Nodes {
		lc := &linClient{id: clients + i, c: c, endpoints: []*ClusterNode{n}, http: c.httpClient(c.AdminKey, 10*time.Second), h: h}
		for _, k := range keys {
			if !lc.do(linInput{Kind: linDescribe, Key: k}) {
				t.Errorf("%s gave no consistent describe of %s after the run", n.ID, k)
			}
		}
		lc.http.CloseIdleConnections()
	}

	history := h.finish()
	t.Logf("linearizability run: %d operations recorded (%d outcome unknown), %d refused with 503 and not recorded, %d kills, in %v",
		len(history), h.unknown.Load(), h.refused.Load(), kills, time.Since(h.start).Round(time.Millisecond))
	if n := h.unexpected.Load(); n > 0 {
		t.Errorf("%d answers outside the contract, for example: %v", n, h.unexpectedErrs)
	}

	checkTimeout := time.Duration(envInt(t, "MINKMS_CHAOS_CHECK_SECONDS", 120)) * time.Second
	checkStart := time.Now()
	result, info := porcupine.CheckOperationsVerbose(keyModel, history, checkTimeout)
	t.Logf("porcupine: %s in %v", result, time.Since(checkStart).Round(time.Millisecond))
	switch result {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(artifactsDir(t), sanitize(t.Name())+"-"+strconv.FormatInt(time.Now().Unix(), 10)+".html")
		if err := porcupine.VisualizePath(keyModel, info, path); err != nil {
			t.Fatalf("the history is not linearizable; writing the visualization to %s: %v", path, err)
		}
		t.Fatalf("the history is not linearizable: an acknowledged result contradicts every order of the operations; see %s", path)
	default:
		t.Fatalf("porcupine could not decide within %v (MINKMS_CHAOS_CHECK_SECONDS): %s", checkTimeout, result)
	}
}

// TestKeyModel checks the model and the recording conventions on small
// histories, so that a violation found under chaos is the cluster's and
// not the model's.
func TestKeyModel(t *testing.T) {
	const end = 1000 // where an unknown operation returns
	op := func(client int, kind linOpKind, call, ret int64, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Kind: kind, Key: "k"}, Call: call, Output: out, Return: ret}
	}
	unknown := linOutput{Unknown: true}
	ok, notFound := linOutput{}, linOutput{NotFound: true}
	version := func(v int) linOutput { return linOutput{Version: v} }
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"Sequential", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(0, linRotate, 2, 3, version(2)), op(0, linDescribe, 4, 5, version(2)),
			op(0, linDelete, 6, 7, ok), op(0, linDescribe, 8, 9, notFound), op(0, linCreate, 10, 11, ok),
			op(0, linDescribe, 12, 13, version(1)),
		}, porcupine.Ok},
		{"LostRotation", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(0, linRotate, 2, 3, version(2)), op(1, linDescribe, 4, 5, version(1)),
		}, porcupine.Illegal},
		{"LostCreate", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(1, linDescribe, 2, 3, notFound),
		}, porcupine.Illegal},
		{"CreateOfAnExistingKeySucceeds", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(1, linCreate, 2, 3, ok),
		}, porcupine.Illegal},
		{"ConcurrentCreatesOneWins", []porcupine.Operation{
			op(0, linCreate, 0, 5, ok), op(1, linCreate, 1, 4, linOutput{Exists: true}), op(2, linDescribe, 6, 7, version(1)),
		}, porcupine.Ok},
		{"UnknownCreateTookEffect", []porcupine.Operation{
			op(0, linCreate, 0, end, unknown), op(1, linDescribe, 2, 3, notFound), op(1, linDescribe, 4, 5, version(1)),
		}, porcupine.Ok},
		{"UnknownCreateDidNot", []porcupine.Operation{
			op(0, linCreate, 0, end, unknown), op(1, linDescribe, 4, 5, notFound),
		}, porcupine.Ok},
		{"UnknownRotateSeenThenUnseen", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(0, linRotate, 2, end, unknown),
			op(1, linDescribe, 3, 4, version(2)), op(1, linDescribe, 5, 6, version(1)),
		}, porcupine.Illegal},
		{"VersionsSkipped", []porcupine.Operation{
			op(0, linCreate, 0, 1, ok), op(0, linRotate, 2, 3, version(3)),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, info := porcupine.CheckOperationsVerbose(keyModel, tc.history, 10*time.Second)
			if got != tc.want {
				t.Fatalf("check = %s, want %s", got, tc.want)
			}
			if err := porcupine.Visualize(keyModel, info, io.Discard); err != nil {
				t.Fatalf("visualizing: %v", err)
			}
		})
	}
}
