// Package tlsmetrics exports the figures of a tlsmgr.Manager as Prometheus
// metrics. It is a separate package so that tlsmgr itself does not depend
// on the Prometheus client.
package tlsmetrics

import (
	"github.com/minkms/minkms/tlsmgr"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	notAfterDesc = prometheus.NewDesc("minkms_tls_cert_not_after_timestamp_seconds",
		"Earliest effective expiry (NotAfter of the chain) of the served certificates, in Unix seconds.", nil, nil)
	reloadsDesc = prometheus.NewDesc("minkms_tls_reload_total",
		"TLS reload runs by result: unchanged, reloaded or failed (anything refused).", []string{"result"}, nil)
	failuresDesc = prometheus.NewDesc("minkms_tls_reload_failures_consecutive",
		"Failed TLS reload runs since the last one without failure.", nil, nil)
	lastReloadDesc = prometheus.NewDesc("minkms_tls_last_reload_timestamp_seconds",
		"End of the last TLS reload run without failure, in Unix seconds.", nil, nil)
	differsDesc = prometheus.NewDesc("minkms_tls_served_differs_from_disk",
		"1 if a served certificate or the CA bundle differs from the files on disk.", nil, nil)
	handshakeDesc = prometheus.NewDesc("minkms_tls_handshake_failures_total",
		"Failed TLS handshakes by listener.", []string{"listener"}, nil)
)

// Collector is a prometheus.Collector over the figures of a Manager, read
// at every scrape.
type Collector struct{ m *tlsmgr.Manager }

var _ prometheus.Collector = (*Collector)(nil)

// New returns the collector of m.
func New(m *tlsmgr.Manager) *Collector { return &Collector{m: m} }

// Register registers the collector of m on reg (never the global registry
// unless the caller passes it).
func Register(reg prometheus.Registerer, m *tlsmgr.Manager) error {
	return reg.Register(New(m))
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notAfterDesc, reloadsDesc, failuresDesc, lastReloadDesc, differsDesc, handshakeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	mt := c.m.Metrics()
	ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(mt.NotAfter.Unix()))
	for _, o := range []tlsmgr.Outcome{tlsmgr.Unchanged, tlsmgr.Reloaded, tlsmgr.Failed} {
		ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(mt.Reloads[o]), string(o))
	}
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.GaugeValue, float64(mt.ConsecutiveFailures))
	ch <- prometheus.MustNewConstMetric(lastReloadDesc, prometheus.GaugeValue, float64(mt.LastReload.Unix()))
	differs := 0.0
	if mt.DiffersFromDisk {
		differs = 1
	}
	ch <- prometheus.MustNewConstMetric(differsDesc, prometheus.GaugeValue, differs)
	for listener, n := range mt.HandshakeFailures {
		ch <- prometheus.MustNewConstMetric(handshakeDesc, prometheus.CounterValue, float64(n), listener)
	}
}
