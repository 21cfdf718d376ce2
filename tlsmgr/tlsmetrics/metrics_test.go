package tlsmetrics_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/tlsmetrics"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	dir := t.TempDir()
	p, err := tlsmgr.WriteDevPKI(dir, []string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tlsmgr.New(tlsmgr.Config{
		Certs:  []tlsmgr.Pair{{Cert: p.Cert, Key: p.Key}},
		CA:     p.CACert,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p.Key)
	m.Reload(context.Background())
	m.HandshakeFailed("api")

	reg := prometheus.NewRegistry()
	if err := tlsmetrics.Register(reg, m); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, metric := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range metric.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case metric.GetGauge() != nil:
				got[name] = metric.GetGauge().GetValue()
			case metric.GetCounter() != nil:
				got[name] = metric.GetCounter().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"minkms_tls_reload_total{failed}":             1,
		"minkms_tls_reload_total{unchanged}":          0,
		"minkms_tls_reload_failures_consecutive":      1,
		"minkms_tls_served_differs_from_disk":         1,
		"minkms_tls_handshake_failures_total{api}":    1,
		"minkms_tls_cert_not_after_timestamp_seconds": float64(m.Status().EffectiveExpiry.Unix()),
		"minkms_tls_last_reload_timestamp_seconds":    float64(m.Metrics().LastReload.Unix()),
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}
