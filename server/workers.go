package server

import (
	"net/http"
	"runtime"
	"sync"
)

// workers runs HTTP/2 requests on long-lived goroutines.
//
// net/http serves each HTTP/2 request on a new goroutine, which starts with
// a small stack; the node's middleware, router and handlers are deep enough
// that every request grew that stack several times, and copying a stack is
// expensive (a CPU profile of a node under `minkms bench` showed
// runtime.newstack at 12 % of the node's CPU). A worker keeps the stack it
// grew for the next request. An HTTP/1.1 request already runs on its
// connection's goroutine, which lives as long as the connection, and is
// served where it is.
//
// A request is handed to a worker only if one is idle at that moment;
// otherwise it runs on its own goroutine, as without workers, so a slow or
// streaming request (a log follow) never waits for a worker nor holds up
// another request.
type workers struct {
	next http.Handler
	jobs chan *workerJob
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type workerJob struct {
	w        http.ResponseWriter
	r        *http.Request
	panicked any // what the handler panicked with, re-raised on the caller's goroutine
	done     chan struct{}
}

var workerJobs = sync.Pool{New: func() any { return &workerJob{done: make(chan struct{}, 1)} }}

// workersPerCPU is how many workers a node starts per CPU it may use.
// Requests that find no idle worker run on their own goroutine, so this
// only needs to cover the requests running at the same time, not the
// ones waiting for I/O.
const workersPerCPU = 8

// newWorkers starts n workers (workersPerCPU per GOMAXPROCS if n is 0)
// serving next. Close stops them.
func newWorkers(next http.Handler, n int) *workers {
	if n <= 0 {
		n = workersPerCPU * runtime.GOMAXPROCS(0)
	}
	p := &workers{next: next, jobs: make(chan *workerJob), stop: make(chan struct{})}
	p.wg.Add(n)
	for range n {
		go p.work()
	}
	return p
}

func (p *workers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		p.next.ServeHTTP(w, r)
		return
	}
	j := workerJobs.Get().(*workerJob)
	j.w, j.r = w, r
	select {
	case p.jobs <- j:
	default: // no worker idle
		j.w, j.r = nil, nil
		workerJobs.Put(j)
		p.next.ServeHTTP(w, r)
		return
	}
	<-j.done
	v := j.panicked
	j.w, j.r, j.panicked = nil, nil, nil
	workerJobs.Put(j)
	if v != nil {
		// http.ErrAbortHandler and anything recoverPanics did not take:
		// net/http handles it on the request's own goroutine, as before.
		panic(v)
	}
}

func (p *workers) work() {
	defer p.wg.Done()
	for {
		select {
		case j := <-p.jobs:
			p.serve(j)
		case <-p.stop:
			return
		}
	}
}

// serve runs one request and reports it done, with the panic, if any, for
// the requesting goroutine to re-raise.
func (p *workers) serve(j *workerJob) {
	defer func() {
		j.panicked = recover()
		j.done <- struct{}{}
	}()
	p.next.ServeHTTP(j.w, j.r)
}

// Close stops the idle workers and waits for the busy ones to finish
// their request. Requests that arrive after Close run on their own
// goroutines.
func (p *workers) Close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
