package tlsmgr_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

// rejection is one way a candidate is broken: break writes it over the
// fixture's files.
type rejection struct {
	name   string
	reason tlsmgr.Reason
	caFail bool   // the CA bundle fails, not the pair
	detail string // a substring the error must hold
	brk    func(t *testing.T, f *fixture)
}

func rejections() []rejection {
	return []rejection{
		{"MissingCert", tlsmgr.ReasonCertUnreadable, false, "no such file or directory", func(t *testing.T, f *fixture) {
			os.Remove(f.pair.Cert)
		}},
		{"MissingKey", tlsmgr.ReasonKeyUnreadable, false, "no such file or directory", func(t *testing.T, f *fixture) {
			os.Remove(f.pair.Key)
		}},
		{"EmptyCert", tlsmgr.ReasonEmpty, false, "empty", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Cert, nil)
		}},
		{"EmptyKey", tlsmgr.ReasonEmpty, false, "empty", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Key, []byte("\n"))
		}},
		{"TruncatedPEM", tlsmgr.ReasonMalformedPEM, false, "truncated", func(t *testing.T, f *fixture) {
			l := f.issue(t, testpki.Options{})
			f.writePair(t, l)
			mustWriteFile(t, f.pair.Cert, l.CertPEM[:len(l.CertPEM)/2])
		}},
		{"TruncatedIntermediate", tlsmgr.ReasonMalformedPEM, false, "block 2", func(t *testing.T, f *fixture) {
			inter := f.ca.MustIntermediate(t, "test intermediate", f.now.Add(90*24*time.Hour))
			l := inter.MustIssue(t, testpki.Options{Now: f.now})
			f.writePair(t, l)
			mustWriteFile(t, f.pair.Cert, l.CertPEM[:len(l.CertPEM)-80])
		}},
		{"TrailingGarbage", tlsmgr.ReasonMalformedPEM, false, "trailing data", func(t *testing.T, f *fixture) {
			l := f.issue(t, testpki.Options{})
			f.writePair(t, l)
			mustWriteFile(t, f.pair.Cert, append(bytes.Clone(l.CertPEM), "garbage\n"...))
		}},
		{"CABundleTruncatedSecondCA", tlsmgr.ReasonMalformedPEM, true, "block 2", func(t *testing.T, f *fixture) {
			other := testpki.MustCA(t, "other root", f.now)
			bundle := append(bytes.Clone(f.ca.PEM), other.PEM[:len(other.PEM)/2]...)
			mustWriteFile(t, f.caPEM, bundle)
		}},
		{"KeyMismatch", tlsmgr.ReasonKeyMismatch, false, "does not match", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Key, testpki.KeyPEM(t, testpki.MustKey(t, testpki.P256)))
		}},
		{"EncryptedPKCS8", tlsmgr.ReasonEncryptedKey, false, "encrypted", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Key, testpki.EncryptedPKCS8(t, f.leaf.Key, "secret"))
		}},
		{"EncryptedLegacy", tlsmgr.ReasonEncryptedKey, false, "encrypted", func(t *testing.T, f *fixture) {
			mustWriteFile(t, f.pair.Key, testpki.LegacyEncrypted(t, f.leaf.Key.(*ecdsa.PrivateKey), "secret"))
		}},
		{"RSA1024", tlsmgr.ReasonAlgorithm, false, "RSA-1024", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{Key: testpki.RSA1024}))
		}},
		{"ECDSAP224", tlsmgr.ReasonAlgorithm, false, "ECDSA P-224", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{Key: testpki.P224}))
		}},
		{"Expired", tlsmgr.ReasonExpired, false, "expired on", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{NotBefore: f.now.Add(-48 * time.Hour), NotAfter: f.now.Add(-time.Hour)}))
		}},
		{"NotYetValid", tlsmgr.ReasonNotYetValid, false, "not valid before", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{NotBefore: f.now.Add(time.Hour)}))
		}},
		{"SANWithoutHost", tlsmgr.ReasonHostMismatch, false, `"127.0.0.1"`, func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{Hosts: []string{"other.example", "10.1.2.3"}}))
		}},
		{"ServerAuthOnly", tlsmgr.ReasonKeyUsage, false, "only server authentication", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))
		}},
		{"ClientAuthOnly", tlsmgr.ReasonKeyUsage, false, "only client authentication", func(t *testing.T, f *fixture) {
			f.writePair(t, f.issue(t, testpki.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
		}},
		{"HugeCert", tlsmgr.ReasonCertUnreadable, false, "larger than", func(t *testing.T, f *fixture) {
			l := f.issue(t, testpki.Options{})
			f.writePair(t, l)
			huge := bytes.Repeat(l.CertPEM, (5<<20)/len(l.CertPEM)) // a valid chain of 5 MiB
			mustWriteFile(t, f.pair.Cert, huge)
		}},
		{"OtherCA", tlsmgr.ReasonChain, false, "does not verify", func(t *testing.T, f *fixture) {
			other := testpki.MustCA(t, "other root", f.now)
			f.writePair(t, other.MustIssue(t, testpki.Options{Now: f.now}))
		}},
		{"ExpiredIntermediate", tlsmgr.ReasonExpired, false, "expired on", func(t *testing.T, f *fixture) {
			inter := f.ca.MustIntermediate(t, "old intermediate", f.now.Add(-time.Minute))
			f.writePair(t, inter.MustIssue(t, testpki.Options{Now: f.now}))
		}},
	}
}

// TestNewRefuses: a node does not start with an invalid certificate; the
// error names the file and the reason.
func TestNewRefuses(t *testing.T) {
	for _, tc := range rejections() {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			tc.brk(t, f)
			_, err := tlsmgr.New(f.config())
			if !errors.Is(err, tc.reason) {
				t.Fatalf("New: got %v, want reason %s", err, tc.reason)
			}
			var v *tlsmgr.ValidationError
			if !errors.As(err, &v) || !strings.Contains(err.Error(), v.File) {
				t.Errorf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
			if _, ok := f.logs.find(tc.reason); !ok {
				t.Errorf("no warning with reason %s logged; got %q", tc.reason, f.logs.warnings())
			}
		})
	}
}

// TestReloadRefuses: every refused candidate keeps the old certificate
// serving, logs the reason and counts it.
func TestReloadRefuses(t *testing.T) {
	for _, tc := range rejections() {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			m := f.mustManager(t)
			before := servedSerial(m)
			rotations, cancel := m.Subscribe()
			defer cancel()
			f.logs.reset()

			tc.brk(t, f)
			res := m.Reload(context.Background())

			got := res.Pairs[0]
			gotCA := res.CA
			if tc.caFail {
				if gotCA.Outcome != tlsmgr.Failed || gotCA.Reason != tc.reason {
					t.Fatalf("CA result %+v, want failed with %s", gotCA, tc.reason)
				}
				if !strings.Contains(gotCA.Error, tc.detail) {
					t.Errorf("CA error %q does not say %q", gotCA.Error, tc.detail)
				}
			} else {
				if got.Outcome != tlsmgr.Failed || got.Reason != tc.reason {
					t.Fatalf("pair result %+v, want failed with %s", got, tc.reason)
				}
				if !strings.Contains(got.Error, tc.detail) {
					t.Errorf("pair error %q does not say %q", got.Error, tc.detail)
				}
			}
			if res.Rotated {
				t.Error("a refused candidate rotated the snapshot")
			}
			select {
			case <-rotations:
				t.Error("subscribers were told of a rotation that did not happen")
			default:
			}
			if s := servedSerial(m); s != before {
				t.Errorf("served serial %s, want the old %s", s, before)
			}
			if _, ok := f.logs.find(tc.reason); !ok {
				t.Errorf("no warning with reason %s logged; got %q", tc.reason, f.logs.warnings())
			}
			mt := m.Metrics()
			if mt.Reloads[tlsmgr.Failed] != 1 || mt.ConsecutiveFailures != 1 || !mt.DiffersFromDisk {
				t.Errorf("metrics %+v, want one failure counted and the disk differing", mt)
			}
			st := m.Status()
			fails, reason := st.Pairs[0].ConsecutiveFailures, st.Pairs[0].LastErrorReason
			if tc.caFail {
				fails, reason = st.CA.ConsecutiveFailures, st.CA.LastErrorReason
			}
			if fails != 1 || reason != tc.reason {
				t.Errorf("status: %d consecutive failures with reason %q, want 1 with %s", fails, reason, tc.reason)
			}
		})
	}
}

// TestReloadLogsReadFailureInTheDocumentedWords pins the operator-facing
// wording of unreadable files.
func TestReloadLogsReadFailureInTheDocumentedWords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove func(f *fixture) string
		format string
	}{
		{"Cert", func(f *fixture) string { return f.pair.Cert }, "Failed to read server certificate: open %s: no such file or directory"},
		{"Key", func(f *fixture) string { return f.pair.Key }, "Failed to read server private key: open %s: no such file or directory"},
		{"CA", func(f *fixture) string { return f.caPEM }, "Failed to read CA certificates: stat %s: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			m := f.mustManager(t)
			path := tc.remove(f)
			os.Remove(path)
			m.Reload(context.Background())
			want := fmt.Sprintf(tc.format, path)
			if !slices.Contains(f.logs.warnings(), want) {
				t.Errorf("warnings %q lack %q", f.logs.warnings(), want)
			}
		})
	}
}

// TestReloadCertBeforeKey: a new certificate written while the old key is
// still there is refused; once the key is written too, the pair is served.
func TestReloadCertBeforeKey(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t)
	old := servedSerial(m)
	next := f.issue(t, testpki.Options{})

	mustWriteFile(t, f.pair.Cert, next.CertPEM)
	res := m.Reload(context.Background())
	if res.Pairs[0].Reason != tlsmgr.ReasonKeyMismatch {
		t.Fatalf("cert without its key: %+v, want %s", res.Pairs[0], tlsmgr.ReasonKeyMismatch)
	}
	if servedSerial(m) != old {
		t.Fatal("the old certificate stopped serving")
	}

	mustWriteFile(t, f.pair.Key, next.KeyPEM)
	res = m.Reload(context.Background())
	if res.Pairs[0].Outcome != tlsmgr.Reloaded {
		t.Fatalf("cert with its key: %+v, want reloaded", res.Pairs[0])
	}
	if got := servedSerial(m); got != serialOf(next.Cert) {
		t.Fatalf("served %s, want the new %s", got, serialOf(next.Cert))
	}
	st := m.Status().Pairs[0]
	if st.ConsecutiveFailures != 0 || st.DiffersFromDisk || st.LastError != "" {
		t.Errorf("status after recovery %+v, want clean", st)
	}
}

func TestReloadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testpki.Options
		alg  string
	}{
		{"ECDSAP384", testpki.Options{Key: testpki.P384}, "ECDSA P-384"},
		{"Ed25519", testpki.Options{Key: testpki.Ed25519}, "Ed25519"},
		{"RSA2048", testpki.Options{Key: testpki.RSA2048}, "RSA-2048"},
		{"NotBeforeWithinSkew", testpki.Options{NotBefore: time.Now().Add(time.Minute)}, "ECDSA P-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			m := f.mustManager(t)
			next := f.issue(t, tc.opts)
			f.writePair(t, next)
			res := m.Reload(context.Background())
			if res.Pairs[0].Outcome != tlsmgr.Reloaded || !res.Rotated {
				t.Fatalf("result %+v, want reloaded", res)
			}
			st := m.Status().Pairs[0]
			if st.Serial != serialOf(next.Cert) || st.KeyAlgorithm != tc.alg {
				t.Errorf("served %s (%s), want %s (%s)", st.Serial, st.KeyAlgorithm, serialOf(next.Cert), tc.alg)
			}
		})
	}
}

// TestEffectiveExpiryIsTheChainsEarliest: an intermediate that expires
// before the leaf sets the effective expiry.
func TestEffectiveExpiryIsTheChainsEarliest(t *testing.T) {
	f := mustFixture(t)
	interEnd := f.now.Add(10 * 24 * time.Hour).Truncate(time.Second)
	inter := f.ca.MustIntermediate(t, "short intermediate", interEnd)
	f.writePair(t, inter.MustIssue(t, testpki.Options{Now: f.now, NotAfter: f.now.Add(20 * 24 * time.Hour)}))
	m := f.mustManager(t)
	st := m.Status()
	if !st.Pairs[0].EffectiveExpiry.Equal(interEnd) || !st.EffectiveExpiry.Equal(interEnd) {
		t.Errorf("effective expiry %v, want the intermediate's %v", st.Pairs[0].EffectiveExpiry, interEnd)
	}
	if st.Pairs[0].NotAfter.Equal(interEnd) {
		t.Error("NotAfter should be the leaf's own")
	}
}

func TestReloadUnchangedIsANoOp(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t)
	rotations, cancel := m.Subscribe()
	defer cancel()
	// Same content, new mtime.
	f.writePair(t, f.leaf)
	res := m.Reload(context.Background())
	if res.Rotated || res.Pairs[0].Outcome != tlsmgr.Unchanged || res.CA.Outcome != tlsmgr.Unchanged {
		t.Fatalf("result %+v, want unchanged", res)
	}
	select {
	case <-rotations:
		t.Error("an unchanged reload notified subscribers")
	default:
	}
	if mt := m.Metrics(); mt.Reloads[tlsmgr.Unchanged] != 1 {
		t.Errorf("unchanged reloads %d, want 1", mt.Reloads[tlsmgr.Unchanged])
	}
}

// TestCARotationWaitsForTheCertificate: a new CA bundle that the served
// certificate does not chain to is refused until the certificate follows.
func TestCARotationWaitsForTheCertificate(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t)
	newCA := testpki.MustCA(t, "new root", f.now)

	mustWriteFile(t, f.caPEM, newCA.PEM)
	res := m.Reload(context.Background())
	if res.CA.Outcome != tlsmgr.Failed || res.CA.Reason != tlsmgr.ReasonChain {
		t.Fatalf("CA result %+v, want refused (chain)", res.CA)
	}

	next := newCA.MustIssue(t, testpki.Options{Now: f.now})
	f.writePair(t, next)
	res = m.Reload(context.Background())
	if res.CA.Outcome != tlsmgr.Reloaded || res.Pairs[0].Outcome != tlsmgr.Reloaded {
		t.Fatalf("result %+v, want CA and pair reloaded", res)
	}
	if got := m.Status().CA.Certificates[0].Subject; got != "CN=new root" {
		t.Errorf("CA subject %q, want the new root", got)
	}
}

// TestHostInSANs: the node's advertised host, a name or an IP address, must
// be a SAN of its kind.
func TestHostInSANs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		host  string
		sans  []string
		allow bool
	}{
		{"DNSName", "n1.kms.example", []string{"n1.kms.example"}, true},
		{"DNSWildcard", "n1.kms.example", []string{"*.kms.example"}, true},
		{"OtherDNSName", "n1.kms.example", []string{"n2.kms.example", "127.0.0.1"}, false},
		{"IPv6", "::1", []string{"::1"}, true},
		{"IPOnlyAsDNSName", "10.0.0.1", []string{"n1.kms.example"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustFixture(t)
			f.writePair(t, f.issue(t, testpki.Options{Hosts: tc.sans}))
			_, err := tlsmgr.New(func() tlsmgr.Config { c := f.config(); c.Host = tc.host; return c }())
			if tc.allow && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.allow && !errors.Is(err, tlsmgr.ReasonHostMismatch) {
				t.Fatalf("New: got %v, want %s", err, tlsmgr.ReasonHostMismatch)
			}
		})
	}
}

// TestPeerHostInSANs: the host of the node's inter-node address must be a
// SAN too, at start and at every reload: peers dial it, and a certificate
// without it would be refused by every other node.
func TestPeerHostInSANs(t *testing.T) {
	f := mustFixture(t)
	cfg := f.config()
	cfg.PeerHost = "127.0.0.2"
	f.writePair(t, f.issue(t, testpki.Options{Hosts: []string{"127.0.0.1"}}))
	if _, err := tlsmgr.New(cfg); !errors.Is(err, tlsmgr.ReasonHostMismatch) || !strings.Contains(err.Error(), `peer host "127.0.0.2"`) {
		t.Fatalf("New without the peer host = %v, want %s naming it", err, tlsmgr.ReasonHostMismatch)
	}
	f.writePair(t, f.issue(t, testpki.Options{Hosts: []string{"127.0.0.1", "127.0.0.2"}}))
	m, err := tlsmgr.New(cfg)
	if err != nil {
		t.Fatalf("New with both hosts: %v", err)
	}
	served := m.Status().Pairs[0].Serial
	f.writePair(t, f.issue(t, testpki.Options{Hosts: []string{"127.0.0.1"}}))
	res := m.Reload(context.Background())
	if res.Pairs[0].Outcome != tlsmgr.Failed || res.Pairs[0].Reason != tlsmgr.ReasonHostMismatch {
		t.Fatalf("reload without the peer host = %+v, want refused (%s)", res.Pairs[0], tlsmgr.ReasonHostMismatch)
	}
	if got := m.Status().Pairs[0].Serial; got != served {
		t.Errorf("serving %s after the refused reload, want the old %s", got, served)
	}
}
