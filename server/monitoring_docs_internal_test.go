package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/minkms/minkms/cluster/health"
)

// fencedBlocks returns the code blocks of a markdown text fenced with
// ```lang.
func fencedBlocks(text, lang string) []string {
	var blocks []string
	rest := text
	for {
		_, after, ok := strings.Cut(rest, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, tail, ok := strings.Cut(after, "\n```")
		if !ok {
			return blocks
		}
		blocks = append(blocks, block)
		rest = tail
	}
}

// metricNames returns the names of the metrics a collector describes.
func metricNames(cs ...prometheus.Collector) map[string]bool {
	re := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	names := make(map[string]bool)
	for _, c := range cs {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := re.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}
	return names
}

// TestMonitoringDocs checks docs/monitoring.md against the code: every
// finding is explained and has an alert rule, every cluster metric is
// listed, the rules and the Grafana dashboard parse, and their queries name
// only metrics that exist.
func TestMonitoringDocs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	_, httpm, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	cluster := metricNames(new(clusterCollector), kmsCacheCollector{})
	known := metricNames(new(clusterCollector), kmsCacheCollector{}, httpm.requests, httpm.duration)
	for name := range cluster {
		if !strings.Contains(doc, "`"+name) {
			t.Errorf("docs/monitoring.md does not list the metric %s", name)
		}
	}
	checkExpr := func(where, expr string) {
		for _, name := range regexp.MustCompile(`minkms_[a-z_]+`).FindAllString(expr, -1) {
			if !known[name] {
				t.Errorf("%s: %q names the metric %s, which the server does not serve", where, expr, name)
			}
		}
	}

	var rules []struct {
		Alert string `yaml:"alert"`
		Expr  string `yaml:"expr"`
	}
	for _, block := range fencedBlocks(doc, "yaml") {
		var file struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal([]byte(block), &file); err != nil {
			t.Errorf("a YAML block does not parse: %v\n%s", err, block)
			continue
		}
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				rules = append(rules, r)
			}
		}
	}
	for _, r := range rules {
		if r.Alert == "" || r.Expr == "" {
			t.Errorf("rule %+v lacks alert or expr", r)
		}
		checkExpr("rule "+r.Alert, r.Expr)
	}
	hasRule := func(sub string) bool {
		for _, r := range rules {
			if strings.Contains(r.Expr, sub) {
				return true
			}
		}
		return false
	}
	for _, k := range []health.Kind{
		health.CertExpired, health.CertExpiresSoon, health.SANMismatch, health.CAMismatch, health.ReloadFailing,
		health.StaleReport, health.Unreachable, health.ClockSkew, health.ObservedDiffers, health.ConsensusAtRisk,
	} {
		if !strings.Contains(doc, "| `"+string(k)+"` |") {
			t.Errorf("the findings table does not explain %s", k)
		}
		if !hasRule(`finding="` + string(k) + `"`) {
			t.Errorf("no alert rule for the finding %s", k)
		}
	}
	if !hasRule("minkms_cluster_consensus_at_risk_timestamp_seconds") {
		t.Error("no alert rule on the consensus-at-risk timestamp")
	}

	blocks := fencedBlocks(doc, "json")
	if len(blocks) != 1 {
		t.Fatalf("%d JSON blocks, want the dashboard", len(blocks))
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(blocks[0]), &dash); err != nil {
		t.Fatalf("the Grafana dashboard is no valid JSON: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard %q has no panels", dash.Title)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr("panel "+p.Title, q.Expr)
		}
	}
}
