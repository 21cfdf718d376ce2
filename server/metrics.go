package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/minkms/minkms/kms"
)

// httpMetrics counts the requests of the client API and their latencies by
// route pattern (never the raw path, which holds names), method and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	kes      *kesHTTPMetrics // KES's request metrics, for /v1/metrics

	// series caches the metrics of each (route, method, status) seen, so
	// that a request costs one map lookup rather than three label-value
	// hashes and lookups in the vectors. The keys are bounded: route
	// patterns, five methods and "other", the status codes the node writes.
	series sync.Map // seriesKey -> *httpSeries
}

type seriesKey struct {
	route, method string
	status        int
}

// httpSeries are the metrics one request updates besides the gauge and the
// histogram without labels.
type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	kes      prometheus.Counter // nil: a status outside KES's three counters
}

func (m *httpMetrics) seriesOf(route, method string, status int) *httpSeries {
	k := seriesKey{route, method, status}
	if s, ok := m.series.Load(k); ok {
		return s.(*httpSeries)
	}
	code := strconv.Itoa(status)
	s := &httpSeries{
		requests: m.requests.WithLabelValues(route, method, code),
		duration: m.duration.WithLabelValues(route, method, code),
		kes:      m.kes.counter(status),
	}
	v, _ := m.series.LoadOrStore(k, s)
	return v.(*httpSeries)
}

// newRegistry returns the server's own metrics registry, with the Go
// runtime and process collectors, and the HTTP metrics registered on it.
func newRegistry() (*prometheus.Registry, *httpMetrics, error) {
	reg := prometheus.NewRegistry()
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "minkms_http_requests_total",
			Help: "Requests to the client API by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "minkms_http_request_duration_seconds",
			Help:    "Latency of client API requests by route pattern, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		kes: newKESHTTPMetrics(),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	return reg, m, nil
}

func (m *httpMetrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.kes.active.Inc()
		defer m.kes.active.Dec()
		sw, w := recordStatus(r, w)
		next.ServeHTTP(w, r)
		took := time.Since(start)
		route := routeOf(r)
		if route == "" {
			route = "unmatched"
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead:
		default:
			method = "other" // bounded label values whatever clients send
		}
		s := m.seriesOf(route, method, sw.Status())
		if s.kes != nil {
			s.kes.Inc()
		}
		m.kes.latency.Observe(took.Seconds())
		s.requests.Inc()
		s.duration.Observe(took.Seconds())
	})
}

// kmsCacheCollector serves the counters of kms's cache of decoded key
// rings, identities, enclaves and policies (kms.Service.Stats).
type kmsCacheCollector struct{ stats func() kms.CacheStats }

var (
	kmsCacheEntriesDesc = prometheus.NewDesc("minkms_kms_cache_entries",
		"Entries in the cache of decoded key rings, identities, enclaves and policies.", nil, nil)
	kmsCacheMaxDesc = prometheus.NewDesc("minkms_kms_cache_max_entries",
		"The bound of the cache (cache.max_keys); 0 when it is off.", nil, nil)
	kmsCacheLookupsDesc = prometheus.NewDesc("minkms_kms_cache_lookups_total",
		`Cache lookups: result="hit" answered from memory, result="miss" read the state.`, []string{"result"}, nil)
	kmsCacheDroppedDesc = prometheus.NewDesc("minkms_kms_cache_dropped_total",
		`Entries dropped: reason="eviction" to make room, reason="invalidation" because the state changed.`, []string{"reason"}, nil)
)

func (c kmsCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kmsCacheEntriesDesc
	ch <- kmsCacheMaxDesc
	ch <- kmsCacheLookupsDesc
	ch <- kmsCacheDroppedDesc
}

func (c kmsCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(kmsCacheEntriesDesc, prometheus.GaugeValue, float64(st.Entries))
	ch <- prometheus.MustNewConstMetric(kmsCacheMaxDesc, prometheus.GaugeValue, float64(st.MaxEntries))
	ch <- prometheus.MustNewConstMetric(kmsCacheLookupsDesc, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(kmsCacheLookupsDesc, prometheus.CounterValue, float64(st.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(kmsCacheDroppedDesc, prometheus.CounterValue, float64(st.Evictions), "eviction")
	ch <- prometheus.MustNewConstMetric(kmsCacheDroppedDesc, prometheus.CounterValue, float64(st.Invalidations), "invalidation")
}
