package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/storage/kv"
)

// Every node records a report of itself in the cluster's area
// cluster/nodes: its addresses, its version and its certificates
// (Config.Report), so that every member can list the others' API addresses
// and judge their certificates. The node writes it through raft with a
// command of its own type (CommandNodeReport) when it differs from what is
// recorded — on start, after a certificate reload (Config.ReportTrigger and
// the upkeep's comparison) — and at least once per reload interval, so that
// its age tells whether the node still reports.

// defaultReportInterval is how often a report is rewritten when it says no
// reload interval of its own.
const defaultReportInterval = time.Hour

// ownReport returns this node's report as it should be recorded now; its
// id and addresses are the node's, whatever Config.Report says.
func (n *Node) ownReport() health.NodeReport {
	var r health.NodeReport
	if n.cfg.Report != nil {
		r = n.cfg.Report()
	}
	r.NodeID, r.APIAddr, r.PeerAddr = n.cfg.NodeID, n.cfg.APIAddr, n.cfg.PeerAddr
	r.Time = time.Now().UTC()
	return r
}

// Report returns the report node id recorded in the cluster state, as this
// node has applied it. It returns an error wrapping kv.ErrNotExist if there
// is none.
func (n *Node) Report(id string) (health.NodeReport, error) {
	e, err := n.cfg.Store.Get(nodesBucket, id)
	if err != nil {
		return health.NodeReport{}, fmt.Errorf("the report of node %s: %w", id, err)
	}
	var r storedReport
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return health.NodeReport{}, fmt.Errorf("decode the report of node %s: %w", id, err)
	}
	return r.health(), nil
}

// Reports returns every report recorded in the cluster state, by node id,
// as this node has applied them. A report that does not decode is left
// out.
func (n *Node) Reports() (map[string]health.NodeReport, error) {
	names, err := n.cfg.Store.List(nodesBucket, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("list the node reports: %w", err)
	}
	out := make(map[string]health.NodeReport, len(names))
	for _, id := range names {
		r, err := n.Report(id)
		if err != nil {
			continue // deleted since, or another build's: missing, as if unreported
		}
		out[id] = r
	}
	return out, nil
}

// ensureReport writes this node's report when what is recorded differs
// from it or is older than the report's reload interval. It does nothing
// outside a cluster or while no leader is known.
func (n *Node) ensureReport(ctx context.Context) {
	if !n.inCluster() {
		return
	}
	if id, _ := n.Leader(); id == "" {
		return
	}
	want := n.ownReport()
	every := want.ReloadInterval
	if every <= 0 {
		every = defaultReportInterval
	}
	if have, err := n.Report(n.cfg.NodeID); err == nil && sameReport(have, want) && want.Time.Sub(have.Time) < every {
		return
	}
	if err := n.writeReport(ctx, want); err != nil {
		n.logger.Debug("Could not write this node's report", slog.Any("error", err))
	}
}

// writeReport commits r through raft as this node's report.
func (n *Node) writeReport(ctx context.Context, r health.NodeReport) error {
	v, err := json.Marshal(storedFrom(r))
	if err != nil {
		return fmt.Errorf("encode this node's report: %w", err)
	}
	sealed, err := n.cfg.Store.Seal(nodesBucket, r.NodeID, v)
	if err != nil {
		return fmt.Errorf("write this node's report: %w", err)
	}
	cmd, err := EncodeCommand(Command{Type: CommandNodeReport, Report: SealedReport{NodeID: r.NodeID, Value: sealed}})
	if err != nil {
		return fmt.Errorf("write this node's report: %w", err)
	}
	if err := n.submit(ctx, cmd); err != nil {
		return fmt.Errorf("write this node's report: %w", err)
	}
	return nil
}

// sameReport reports whether a and b say the same but for when they were
// written.
func sameReport(a, b health.NodeReport) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	ja, err1 := json.Marshal(storedFrom(a))
	jb, err2 := json.Marshal(storedFrom(b))
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Reported returns nil once the cluster state holds this node's report
// with its current addresses, which every member lists.
func (n *Node) Reported() error {
	have, err := n.Report(n.cfg.NodeID)
	if errors.Is(err, kv.ErrNotExist) {
		return fmt.Errorf("this node's report is not in the cluster state yet: %w", err)
	}
	if err != nil {
		return err
	}
	if have.APIAddr != n.cfg.APIAddr || have.PeerAddr != n.cfg.PeerAddr {
		return errors.New("this node's report in the cluster state is out of date")
	}
	return nil
}

// storedReport is the JSON of a report in the cluster state. Its names are
// the state's format, apart from the Go names of package health; node_id,
// api_addr and peer_addr are those of the address-only reports of older
// builds, which read these reports too.
type storedReport struct {
	NodeID         string        `json:"node_id"`
	APIAddr        string        `json:"api_addr"`
	PeerAddr       string        `json:"peer_addr"`
	Version        string        `json:"version,omitempty"`
	Time           time.Time     `json:"time"`
	ReloadInterval time.Duration `json:"reload_interval,omitempty"`
	WarnBefore     time.Duration `json:"warn_before,omitempty"`
	Pairs          []storedCert  `json:"pairs,omitempty"`
	CABundle       [][]byte      `json:"ca_bundle,omitempty"`
}

type storedCert struct {
	Cert              string    `json:"cert"`
	Key               string    `json:"key"`
	Subject           string    `json:"subject"`
	Issuer            string    `json:"issuer"`
	Serial            string    `json:"serial"`
	Fingerprint       string    `json:"fingerprint"`
	SANs              []string  `json:"sans,omitempty"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	EffectiveNotAfter time.Time `json:"effective_not_after"`
	LastReload        time.Time `json:"last_reload"`
	LastError         string    `json:"last_error,omitempty"`
	LastErrorReason   string    `json:"last_error_reason,omitempty"`
	DiffersFromDisk   bool      `json:"differs_from_disk,omitempty"`
	Chain             [][]byte  `json:"chain,omitempty"`
}

func storedFrom(r health.NodeReport) storedReport {
	s := storedReport{
		NodeID: r.NodeID, APIAddr: r.APIAddr, PeerAddr: r.PeerAddr, Version: r.Version,
		Time: r.Time, ReloadInterval: r.ReloadInterval, WarnBefore: r.WarnBefore, CABundle: r.CABundle,
	}
	for _, p := range r.Pairs {
		s.Pairs = append(s.Pairs, storedCert(p))
	}
	return s
}

func (s storedReport) health() health.NodeReport {
	r := health.NodeReport{
		NodeID: s.NodeID, APIAddr: s.APIAddr, PeerAddr: s.PeerAddr, Version: s.Version,
		Time: s.Time, ReloadInterval: s.ReloadInterval, WarnBefore: s.WarnBefore, CABundle: s.CABundle,
	}
	for _, p := range s.Pairs {
		r.Pairs = append(r.Pairs, health.CertReport(p))
	}
	return r
}
