package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"testing"
	"time"
)

// TestNodeReport: a running node records its report in the cluster state:
// its version, TLS settings, the summary of its served certificate and the
// served chain and CA bundle in DER.
func TestNodeReport(t *testing.T) {
	cfg, info, err := DevConfig("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { info.Remove() })
	srv, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	readyCtx, cancelReady := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelReady()
	if err := srv.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}

	node := srv.node.Load()
	r, err := node.Report(cfg.Cluster.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	leaf := firstCertDER(t, cfg.TLS.Certs[0].Cert)
	ca := firstCertDER(t, info.CAFile)
	switch {
	case r.NodeID != cfg.Cluster.NodeID || r.APIAddr != cfg.Cluster.Advertise || r.PeerAddr != cfg.Cluster.AdvertisePeer:
		t.Errorf("report identifies %s at %s / %s", r.NodeID, r.APIAddr, r.PeerAddr)
	case r.Version != Version || r.ReloadInterval != cfg.TLS.ReloadInterval || r.WarnBefore != cfg.TLS.WarnBefore:
		t.Errorf("report says version %q, reload interval %s, warn before %s", r.Version, r.ReloadInterval, r.WarnBefore)
	case len(r.Pairs) != 1 || len(r.Pairs[0].Chain) == 0 || !bytes.Equal(r.Pairs[0].Chain[0], leaf):
		t.Fatalf("report pairs = %+v, want the served certificate", r.Pairs)
	case len(r.CABundle) != 1 || !bytes.Equal(r.CABundle[0], ca):
		t.Errorf("report CA bundle has %d certificates, want the dev CA", len(r.CABundle))
	}
	p := r.Pairs[0]
	st := srv.certs.Status().Pairs[0]
	if p.Fingerprint != st.Fingerprint || p.Serial != st.Serial || !p.EffectiveNotAfter.Equal(st.EffectiveExpiry) ||
		p.Cert != st.Cert || p.LastError != "" || p.DiffersFromDisk {
		t.Errorf("report pair = %+v, want the status %+v", p, st)
	}
	if b, _ := json.Marshal(r); len(b) > 8<<10 {
		t.Errorf("the report takes %d bytes, want a few KB", len(b))
	}
}

func firstCertDER(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("no PEM in %s", file)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return block.Bytes
}
