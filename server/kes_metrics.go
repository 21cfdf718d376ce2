package server

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// KES's metrics, in KES's names and shapes, served at GET /v1/metrics for
// KES clients: `kes metric` and MinIO's KMS metrics decode it so that
// only the three request counters may hold labelled series and every
// other family holds exactly one. The full exposition, with these
// families too, is GET /metrics.

// kesResponseBuckets are KES's response time buckets: 10ms to 10s.
var kesResponseBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 3, 5, 10}

// kesHTTPMetrics are KES's request metrics, on a registry of their own.
type kesHTTPMetrics struct {
	reg                      *prometheus.Registry
	success, errors, failure *prometheus.CounterVec // by status code
	active                   prometheus.Gauge
	latency                  prometheus.Histogram
}

func newKESHTTPMetrics() *kesHTTPMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"code"})
	}
	m := &kesHTTPMetrics{
		reg:     prometheus.NewRegistry(),
		success: counter("kes_http_request_success", "Requests answered with a 2xx status, by status code."),
		errors:  counter("kes_http_request_error", "Requests refused with a 4xx status, by status code."),
		failure: counter("kes_http_request_failure", "Requests that failed with a 5xx status, by status code."),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kes_http_request_active", Help: "Requests being served.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kes_http_response_time", Help: "Response times of requests in seconds, from 10ms to 10s.",
			Buckets: kesResponseBuckets,
		}),
	}
	m.reg.MustRegister(m.success, m.errors, m.failure, m.active, m.latency)
	return m
}

// observe counts one answered request.
// counter returns the KES request counter of status, nil for a status
// outside 2xx, 4xx and 5xx.
func (m *kesHTTPMetrics) counter(status int) prometheus.Counter {
	code := strconv.Itoa(status)
	switch {
	case status >= 200 && status < 300:
		return m.success.WithLabelValues(code)
	case status >= 400 && status < 500:
		return m.errors.WithLabelValues(code)
	case status >= 500 && status < 600:
		return m.failure.WithLabelValues(code)
	}
	return nil
}

// kesNodeMetrics are the rest of KES's families, read when scraped: the
// log and audit event counts and the kes_system_* gauges.
type kesNodeMetrics struct{ h *handler }

var (
	kesAuditEventsDesc = prometheus.NewDesc("kes_log_audit_events", "Audit records written since the node started.", nil, nil)
	kesErrorEventsDesc = prometheus.NewDesc("kes_log_error_events", "Error log records written since the node started.", nil, nil)
	kesUpTimeDesc      = prometheus.NewDesc("kes_system_up_time", "Seconds since the node started.", nil, nil)
	kesNumCPUDesc      = prometheus.NewDesc("kes_system_num_cpu", "Logical CPUs of the host; it may be more than the usable ones.", nil, nil)
	kesNumCPUUsedDesc  = prometheus.NewDesc("kes_system_num_cpu_used", "Logical CPUs the node may use (GOMAXPROCS).", nil, nil)
	kesNumThreadsDesc  = prometheus.NewDesc("kes_system_num_threads", "Goroutines that exist now.", nil, nil)
	kesHeapUsedDesc    = prometheus.NewDesc("kes_system_mem_heap_used", "Bytes allocated on the heap.", nil, nil)
	kesHeapObjectsDesc = prometheus.NewDesc("kes_system_mem_heap_objects", "Objects allocated on the heap.", nil, nil)
	kesStackUsedDesc   = prometheus.NewDesc("kes_system_mem_stack_used", "Bytes of stack memory obtained from the OS.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c kesNodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{kesAuditEventsDesc, kesErrorEventsDesc, kesUpTimeDesc, kesNumCPUDesc,
		kesNumCPUUsedDesc, kesNumThreadsDesc, kesHeapUsedDesc, kesHeapObjectsDesc, kesStackUsedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c kesNodeMetrics) Collect(ch chan<- prometheus.Metric) {
	var audit, errs uint64
	if j := c.h.journal; j != nil {
		audit, errs = j.LastAudit(), j.ErrorEvents()
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	up := 0.0
	if c.h.node != nil {
		up = time.Since(c.h.node.Started()).Truncate(10 * time.Millisecond).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(kesAuditEventsDesc, prometheus.CounterValue, float64(audit))
	ch <- prometheus.MustNewConstMetric(kesErrorEventsDesc, prometheus.CounterValue, float64(errs))
	for _, g := range []struct {
		d *prometheus.Desc
		v float64
	}{
		{kesUpTimeDesc, up},
		{kesNumCPUDesc, float64(runtime.NumCPU())},
		{kesNumCPUUsedDesc, float64(runtime.GOMAXPROCS(0))},
		{kesNumThreadsDesc, float64(runtime.NumGoroutine())},
		{kesHeapUsedDesc, float64(mem.HeapAlloc)},
		{kesHeapObjectsDesc, float64(mem.HeapObjects)},
		{kesStackUsedDesc, float64(mem.StackSys)},
	} {
		ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, g.v)
	}
}

// kesGatherer gathers KES's families.
func (h *handler) kesGatherer() prometheus.Gatherer {
	node := prometheus.NewRegistry()
	node.MustRegister(kesNodeMetrics{h})
	return prometheus.Gatherers{h.metrics.kes.reg, node}
}

// kesMetrics serves GET /v1/metrics: KES's families only.
func (h *handler) kesMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(h.kesGatherer(), promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// allMetrics serves GET /metrics: the node's registry and KES's families.
func (h *handler) allMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(prometheus.Gatherers{h.registry, h.kesGatherer()}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
