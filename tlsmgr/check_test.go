package tlsmgr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, f *fixture)
		host    string
		problem string // the What of the expected problem; "" for none
		reason  tlsmgr.Reason
	}{
		{"Good", nil, "127.0.0.1", "", ""},
		{"SANMismatch", nil, "10.9.9.9", "SANs", tlsmgr.ReasonHostMismatch},
		{"KeyMismatch", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Key, testpki.KeyPEM(t, testpki.MustKey(t, testpki.P256)))
		}, "", "key match", tlsmgr.ReasonKeyMismatch},
		{"ExpiresSoon", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{NotAfter: f.now.Add(36 * time.Hour)}))
		}, "", "expiry", ""},
		{"OtherCA", func(t *testing.T, f *fixture) {
			f.writePair(t, testpki.MustCA(t, "other", f.now).MustIssue(t, testpki.Options{Now: f.now}))
		}, "", "chain", tlsmgr.ReasonChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			if tc.prepare != nil {
				tc.prepare(t, f)
			}
			findings := tlsmgr.Check(tlsmgr.CheckConfig{Certs: []tlsmgr.Pair{f.pair}, CA: f.caPEM, Host: tc.host, Now: f.now})
			var problems []tlsmgr.Finding
			whats := map[string]bool{}
			for _, fd := range findings {
				whats[fd.What] = true
				if !fd.OK {
					problems = append(problems, fd)
				}
			}
			if tc.problem == "" {
				if len(problems) != 0 {
					t.Fatalf("problems %v, want none", problems)
				}
				for _, w := range []string{"CA bundle", "certificate", "private key", "key match", "algorithm", "validity", "SANs", "key usage", "chain", "expiry"} {
					if !whats[w] {
						t.Errorf("no finding for %q in %v", w, findings)
					}
				}
				return
			}
			if len(problems) != 1 || problems[0].What != tc.problem || problems[0].Reason != tc.reason {
				t.Fatalf("problems %v, want one %q (%s)", problems, tc.problem, tc.reason)
			}
			if tc.name == "ExpiresSoon" && !strings.Contains(problems[0].Detail, "expires in 36h") {
				t.Errorf("detail %q, want the expiry warning", problems[0].Detail)
			}
		})
	}
}

func TestWriteDevPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := tlsmgr.WriteDevPKI(dir, []string{"127.0.0.1", "localhost"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, problem := range problemsOf(tlsmgr.Check(tlsmgr.CheckConfig{
		Certs: []tlsmgr.Pair{{Cert: p.Cert, Key: p.Key}}, CA: p.CACert, Host: "localhost", WarnBefore: time.Hour,
	})) {
		t.Errorf("dev PKI: %s", problem)
	}
	m, err := tlsmgr.New(tlsmgr.Config{Certs: []tlsmgr.Pair{{Cert: p.Cert, Key: p.Key}}, CA: p.CACert, Host: "127.0.0.1"})
	if err != nil {
		t.Fatalf("New with the dev PKI: %v", err)
	}
	addr := mustServe(t, m.PeerServerTLSConfig())
	if _, err := handshake(addr, m.ClientTLSConfig("localhost")); err != nil {
		t.Fatalf("handshake with the dev PKI: %v", err)
	}
}

func problemsOf(findings []tlsmgr.Finding) []string {
	var s []string
	for _, f := range findings {
		if !f.OK {
			s = append(s, f.String())
		}
	}
	return s
}
