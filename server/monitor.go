package server

import (
	"context"
	"log/slog"
	"time"
)

// Every node evaluates the cluster's health on its own, every
// monitorInterval, so that any node's log and metrics tell what is wrong
// even when the others are down.
const (
	monitorInterval = 10 * time.Second
	monitorTimeout  = 5 * time.Second // for one evaluation, probes included
)

// monitor evaluates the cluster's health periodically and hands each
// result to the findings log and the cluster metrics.
type monitor struct {
	src      healthSource
	findings *findingsLog
	metrics  *clusterCollector
	log      *slog.Logger
	interval time.Duration
	evaluate chan struct{} // a send asks for an evaluation now
}

func newMonitor(src healthSource, metrics *clusterCollector, log *slog.Logger) *monitor {
	return &monitor{
		src: src, findings: newFindingsLog(log), metrics: metrics, log: log,
		interval: monitorInterval, evaluate: make(chan struct{}, 1),
	}
}

// Poke asks for an evaluation as soon as possible, for example after the
// cluster state received a new node report. It never blocks.
func (m *monitor) Poke() {
	select {
	case m.evaluate <- struct{}{}:
	default:
	}
}

// run evaluates at once, then every interval and when poked, until ctx
// is done. Without a source it returns at once.
func (m *monitor) run(ctx context.Context) {
	if m.src == nil {
		return
	}
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		m.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.evaluate:
		}
	}
}

// once evaluates one time. An evaluation that fails (no cluster yet, the
// node closing) changes nothing: the findings logged stay as they were.
func (m *monitor) once(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, monitorTimeout)
	defer cancel()
	in, res, err := m.src.Health(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Debug("Could not evaluate the cluster's health", slog.Any("error", err))
		}
		return
	}
	m.findings.update(ctx, res.Findings)
	m.metrics.update(in, res)
}
