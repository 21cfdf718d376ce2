package tlsmgr_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/minkms/minkms/tlsmgr"
	"github.com/minkms/minkms/tlsmgr/internal/testpki"
)

func TestListenersAndDials(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil }) // real time for the handshakes
	self := m.ClientTLSConfig("127.0.0.1")
	stranger := testpki.MustCA(t, "stranger", f.now).MustIssue(t, testpki.Options{Now: f.now})
	strangerCert := tls.Certificate{Certificate: [][]byte{stranger.Cert.Raw}, PrivateKey: stranger.Key}
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)

	t.Run("PeerAcceptsNode", func(t *testing.T) {
		addr := mustServe(t, m.PeerServerTLSConfig())
		leaf, err := handshake(addr, self)
		if err != nil {
			t.Fatal(err)
		}
		if serialOf(leaf) != serialOf(f.leaf.Cert) {
			t.Errorf("served %s, want %s", serialOf(leaf), serialOf(f.leaf.Cert))
		}
	})
	t.Run("PeerRefusesStranger", func(t *testing.T) {
		addr := mustServe(t, m.PeerServerTLSConfig())
		cfg := presenting(pool, strangerCert)
		if _, err := handshake(addr, cfg); err == nil {
			t.Fatal("the inter-node listener accepted a certificate of another CA")
		}
	})
	t.Run("APIAcceptsSelfSigned", func(t *testing.T) {
		addr := mustServe(t, m.ServerTLSConfig())
		cfg := presenting(pool, strangerCert)
		if _, err := handshake(addr, cfg); err != nil {
			t.Fatalf("the API listener refused an API client certificate: %v", err)
		}
	})
	t.Run("APIVerifyClientsRefusesStranger", func(t *testing.T) {
		mv := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil; c.VerifyClients = true })
		addr := mustServe(t, mv.ServerTLSConfig())
		cfg := presenting(pool, strangerCert)
		if _, err := handshake(addr, cfg); err == nil {
			t.Fatal("verify_clients accepted a certificate of another CA")
		}
		if _, err := handshake(addr, self); err != nil {
			t.Fatalf("verify_clients refused a node certificate: %v", err)
		}
	})
	t.Run("DialRefusesStrangerServer", func(t *testing.T) {
		addr := mustServe(t, &tls.Config{Certificates: []tls.Certificate{strangerCert}})
		if _, err := handshake(addr, self); err == nil {
			t.Fatal("a dial accepted a server of another CA")
		}
	})
	t.Run("DialChecksServerName", func(t *testing.T) {
		addr := mustServe(t, m.PeerServerTLSConfig())
		if _, err := handshake(addr, m.ClientTLSConfig("n9.example")); err == nil {
			t.Fatal("a dial accepted a server certificate for another name")
		}
	})
	t.Run("SNI", func(t *testing.T) {
		second := f.issue(t, testpki.Options{Hosts: []string{"127.0.0.1", "api.example"}})
		p2 := tlsmgr.Pair{Cert: testpki.MustWrite(t, f.dir, "api.crt", second.CertPEM), Key: testpki.MustWrite(t, f.dir, "api.key", second.KeyPEM)}
		ms := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil; c.Certs = append(c.Certs, p2) })
		ln := ms.ServerTLSConfig()
		ln.NextProtos = []string{"h2", "http/1.1"}
		addr := mustServe(t, ln)
		for name, want := range map[string]*x509.Certificate{"api.example": second.Cert, "": f.leaf.Cert} {
			cfg := &tls.Config{RootCAs: pool, ServerName: name, NextProtos: []string{"http/1.1"}}
			if name == "" {
				cfg.ServerName = "127.0.0.1"
			}
			leaf, err := handshake(addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if serialOf(leaf) != serialOf(want) {
				t.Errorf("SNI %q: served %s, want %s", name, serialOf(leaf), serialOf(want))
			}
		}
	})
}

// TestHandshakesDuringReloads: many concurrent handshakes while good and
// bad reloads alternate; every handshake succeeds and sees one of the good
// certificates, whole.
func TestHandshakesDuringReloads(t *testing.T) {
	f := mustFixture(t)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil })
	addr := mustServe(t, m.PeerServerTLSConfig())
	client := m.ClientTLSConfig("127.0.0.1")

	var good sync.Map // serial → struct{}
	good.Store(serialOf(f.leaf.Cert), struct{}{})
	var stop atomic.Bool
	var handshakes atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				leaf, err := handshake(addr, client)
				if err != nil {
					errs <- err
					return
				}
				if _, ok := good.Load(serialOf(leaf)); !ok {
					errs <- &unexpectedCert{serialOf(leaf)}
					return
				}
				handshakes.Add(1)
			}
		})
	}

	ctx := context.Background()
	for i := range 30 {
		if i%2 == 0 {
			next := f.issue(t, testpki.Options{})
			good.Store(serialOf(next.Cert), struct{}{}) // before it can be served
			f.writePair(t, next)
			if r := m.Reload(ctx); r.Pairs[0].Outcome != tlsmgr.Reloaded {
				t.Fatalf("good reload %d: %+v", i, r.Pairs[0])
			}
		} else {
			mustWriteFile(t, f.pair.Key, testpki.KeyPEM(t, testpki.MustKey(t, testpki.P256)))
			if r := m.Reload(ctx); r.Pairs[0].Outcome != tlsmgr.Failed {
				t.Fatalf("bad reload %d: %+v", i, r.Pairs[0])
			}
		}
		// Let some handshakes run against each generation.
		n := handshakes.Load()
		testpki.Eventually(t, func() bool { return handshakes.Load() >= n+4 || len(errs) > 0 }, "handshakes")
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// presenting returns a client config that presents cert whatever CAs the
// server asks for.
func presenting(roots *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		RootCAs:              roots,
		ServerName:           "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}
}

type unexpectedCert struct{ serial string }

func (e *unexpectedCert) Error() string { return "served an unexpected certificate " + e.serial }

// TestTLSVersionsAndSuites: TLS 1.2 clients get only ECDHE AEAD suites, and
// with MinVersion 1.3 a TLS 1.2 client is refused, on both listeners.
func TestTLSVersionsAndSuites(t *testing.T) {
	f := mustFixture(t)
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)
	m := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil })
	m13 := f.mustManager(t, func(c *tlsmgr.Config) { c.Clock = nil; c.MinVersion = tls.VersionTLS13 })
	weak := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	}
	self := m.ClientTLSConfig("127.0.0.1")
	// dial completes a handshake. On TLS 1.2 the server has checked the
	// client certificate before the client's handshake completes; version
	// and suite are refused at the server's hello on any version.
	dial := func(addr string, max uint16, suites []uint16) (tls.ConnectionState, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{
			RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: max, CipherSuites: suites,
			GetClientCertificate: self.GetClientCertificate,
		})
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	for name, cfg := range map[string]func(*tlsmgr.Manager) *tls.Config{
		"API":  (*tlsmgr.Manager).ServerTLSConfig,
		"Peer": (*tlsmgr.Manager).PeerServerTLSConfig,
	} {
		t.Run(name+"/TLS12RefusesCBC", func(t *testing.T) {
			addr := mustServe(t, cfg(m))
			if cs, err := dial(addr, tls.VersionTLS12, weak); err == nil {
				t.Fatalf("a TLS 1.2 client offering only CBC and static-RSA suites was accepted with %s", tls.CipherSuiteName(cs.CipherSuite))
			}
		})
		t.Run(name+"/TLS12AcceptsAEAD", func(t *testing.T) {
			addr := mustServe(t, cfg(m))
			cs, err := dial(addr, tls.VersionTLS12, nil)
			if err != nil {
				t.Fatalf("a TLS 1.2 client with the default suites was refused: %v", err)
			}
			if !slices.Contains(tlsmgr.AEADSuites, cs.CipherSuite) {
				t.Errorf("negotiated %s, not an AEAD suite", tls.CipherSuiteName(cs.CipherSuite))
			}
		})
		t.Run(name+"/MinVersion13RefusesTLS12", func(t *testing.T) {
			addr := mustServe(t, cfg(m13))
			if _, err := dial(addr, tls.VersionTLS12, nil); err == nil {
				t.Fatal("min_version 1.3 accepted a TLS 1.2 client")
			}
			if cs, err := dial(addr, tls.VersionTLS13, nil); err != nil || cs.Version != tls.VersionTLS13 {
				t.Fatalf("min_version 1.3 refused a TLS 1.3 client: %v", err)
			}
		})
	}
}
