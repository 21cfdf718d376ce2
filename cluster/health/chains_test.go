package health_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

// setPKI gives id a served chain and a CA bundle.
func setPKI(in *health.Input, id string, chain, bundle [][]byte) {
	setReport(in, id, func(r *health.NodeReport) { r.Pairs[0].Chain, r.CABundle = chain, bundle })
}

// onePKI gives every member of in a leaf of ca and a bundle of ca.
func onePKI(tb testing.TB, in *health.Input, ca *testCA) {
	for _, m := range in.Members {
		setPKI(in, m.ID, [][]byte{ca.MustLeaf(tb, m.ID+".example.net", leafOptions{})}, [][]byte{ca.der})
	}
}

func TestCAMismatch(t *testing.T) {
	ca1, ca2 := MustCA(t, "ca1"), MustCA(t, "ca2")
	inter := ca1.MustIntermediate(t, "ca1 intermediate")
	tests := []struct {
		name   string
		change func(*health.Input)
		want   []want
	}{
		{"OneCA", func(*health.Input) {}, nil},
		{"BundleLacksTheCA", func(in *health.Input) {
			setReport(in, "n3", func(r *health.NodeReport) { r.CABundle = [][]byte{ca2.der} })
		}, []want{
			{health.Warning, []string{"n1", "n3"}, "Certificate of node n1 does not verify against the CA bundle of node n3", time.Time{}},
			{health.Warning, []string{"n2", "n3"}, "Certificate of node n2 does not verify against the CA bundle of node n3", time.Time{}},
		}},
		{"CertificateOfAnotherCA", func(in *health.Input) {
			setPKI(in, "n3", [][]byte{ca2.MustLeaf(t, "n3.example.net", leafOptions{})}, [][]byte{ca1.der, ca2.der})
		}, []want{
			{health.Warning, []string{"n1", "n3"}, "Certificate of node n3 does not verify against the CA bundle of node n1", time.Time{}},
			{health.Warning, []string{"n2", "n3"}, "Certificate of node n3 does not verify against the CA bundle of node n2", time.Time{}},
		}},
		{"BothDirectionsOneFinding", func(in *health.Input) {
			setPKI(in, "n3", [][]byte{ca2.MustLeaf(t, "n3.example.net", leafOptions{})}, [][]byte{ca2.der})
		}, []want{
			{health.Warning, []string{"n1", "n3"}, "Certificate of node n1 does not verify against the CA bundle of node n3; Certificate of node n3 does not verify against the CA bundle of node n1", time.Time{}},
			{health.Warning, []string{"n2", "n3"}, "Certificate of node n2 does not verify against the CA bundle of node n3; Certificate of node n3 does not verify against the CA bundle of node n2", time.Time{}},
		}},
		{"Intermediate", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{inter.MustLeaf(t, "n2.example.net", leafOptions{}), inter.der}, [][]byte{ca1.der})
		}, nil},
		{"IntermediateNotServed", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{inter.MustLeaf(t, "n2.example.net", leafOptions{})}, [][]byte{ca1.der})
		}, []want{
			{health.Warning, []string{"n1", "n2"}, "Certificate of node n2 does not verify against the CA bundle of node n1", time.Time{}},
			{health.Warning, []string{"n2", "n3"}, "Certificate of node n2 does not verify against the CA bundle of node n3", time.Time{}},
		}},
		// An expired certificate is cert-expired's; the chain is judged
		// at a moment it is valid.
		{"ExpiredLeaf", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{ca1.MustLeaf(t, "n2.example.net", leafOptions{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)})}, [][]byte{ca1.der})
		}, nil},
		{"ExpiresExactlyNow", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{ca1.MustLeaf(t, "n2.example.net", leafOptions{notAfter: now})}, [][]byte{ca1.der})
		}, nil},
		{"NotYetValidLeaf", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{ca1.MustLeaf(t, "n2.example.net", leafOptions{notBefore: now.Add(time.Hour)})}, [][]byte{ca1.der})
		}, nil},
		{"ServerAuthOnly", func(in *health.Input) {
			setPKI(in, "n2", [][]byte{ca1.MustLeaf(t, "n2.example.net", leafOptions{usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})}, [][]byte{ca1.der})
		}, []want{
			{health.Warning, []string{"n1", "n2"}, "Certificate of node n2 does not verify against the CA bundle of node n1: not valid for both server and client authentication", time.Time{}},
			{health.Warning, []string{"n2", "n3"}, "Certificate of node n2 does not verify against the CA bundle of node n3: not valid for both server and client authentication", time.Time{}},
		}},
		{"NoBundleNotJudged", func(in *health.Input) {
			setPKI(in, "n3", [][]byte{ca2.MustLeaf(t, "n3.example.net", leafOptions{})}, nil)
			setPKI(in, "n1", [][]byte{ca1.MustLeaf(t, "n1.example.net", leafOptions{})}, nil)
			setPKI(in, "n2", [][]byte{ca1.MustLeaf(t, "n2.example.net", leafOptions{})}, nil)
		}, nil},
		{"UnknownCAObserved", func(in *health.Input) {
			in.Observations = []health.Observation{{Observer: "n3", Peer: "10.0.0.1:7001", FailedAt: now, Failure: "unknown-ca"}}
		}, []want{
			{health.Warning, []string{"n1", "n3"}, "Handshake of node n3 with node n1 fails: unknown certificate authority", time.Time{}},
		}},
		{"UnknownCARecovered", func(in *health.Input) {
			in.Observations = []health.Observation{{Observer: "n3", Peer: "n1", FailedAt: now.Add(-time.Minute), At: now, Failure: "unknown-ca"}}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustCluster(t, 3)
			onePKI(t, &in, ca1)
			tt.change(&in)
			res := checkFindings(t, in, health.CAMismatch, tt.want)
			if ofKind(res, health.ConsensusAtRisk)[0].Severity != health.Info {
				t.Errorf("one member's mismatch put consensus at risk: %+v", res.Findings)
			}
		})
	}
	t.Run("ChainDoesNotParse", func(t *testing.T) {
		in := MustCluster(t, 3)
		onePKI(t, &in, ca1)
		setReport(&in, "n2", func(r *health.NodeReport) { r.Pairs[0].Chain = [][]byte{{1, 2, 3}} })
		got := ofKind(health.Evaluate(in), health.CAMismatch)
		if len(got) != 2 || !strings.HasPrefix(got[0].Message, "Certificate of node n2 does not verify against the CA bundle of node n1: its chain does not parse: ") {
			t.Errorf("got %+v", got)
		}
	})
}
