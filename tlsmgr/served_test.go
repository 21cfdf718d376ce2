package tlsmgr_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// TestServed: the DER of the served chain (leaf first, intermediates after)
// and of the CA bundle, following a reload, and copies that the caller may
// keep.
func TestServed(t *testing.T) {
	f := mustFixture(t)
	inter := f.ca.MustIntermediate(t, "intermediate", f.now.Add(100*24*time.Hour))
	first := inter.MustIssue(t, testpki.Options{Now: f.now})
	f.writePair(t, first)
	m := f.mustManager(t)

	chains, ca := m.Served()
	if len(chains) != 1 || len(chains[0]) != 2 {
		t.Fatalf("Served chains = %d pairs, want 1 pair of 2 certificates", len(chains))
	}
	if !bytes.Equal(chains[0][0], first.Cert.Raw) || !bytes.Equal(chains[0][1], inter.Cert.Raw) {
		t.Error("Served chain is not the leaf followed by its intermediate")
	}
	if len(ca) != 1 || !bytes.Equal(ca[0], f.ca.Cert.Raw) {
		t.Errorf("Served CA bundle = %d certificates, want the root", len(ca))
	}
	chains[0][0][0] ^= 0xff // a copy: the manager's is untouched
	if again, _ := m.Served(); !bytes.Equal(again[0][0], first.Cert.Raw) {
		t.Error("Served returned the manager's own bytes")
	}

	next := f.issue(t, testpki.Options{})
	f.writePair(t, next)
	if res := m.Reload(context.Background()); res.Pairs[0].Outcome != tlsmgr.Reloaded {
		t.Fatalf("reload %+v", res)
	}
	chains, _ = m.Served()
	if len(chains[0]) != 1 || !bytes.Equal(chains[0][0], next.Cert.Raw) {
		t.Error("Served does not follow the reload")
	}
	if fp := m.Status().Pairs[0].Fingerprint; fp != fingerprint(chains[0][0]) {
		t.Errorf("Status fingerprint %s is not the served leaf's", fp)
	}
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
