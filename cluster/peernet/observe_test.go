package peernet_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/cluster/peernet"
)

// pairValid issues a leaf for ip valid from notBefore to notAfter, in memory.
func (ca *testCA) pairValid(tb testing.TB, ip string, notBefore, notAfter time.Time) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: ip},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// remoteHostTo is the host a connection to n comes from when it binds no
// source address.
func remoteHostTo(t *testing.T, n *node) string {
	t.Helper()
	conn, err := net.Dial("tcp", n.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host, _, _ := net.SplitHostPort(conn.LocalAddr().String())
	return host
}

func fingerprintOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// observation returns what n saw of peer, failing when it saw nothing.
func observation(t *testing.T, n *node, peer string) health.Observation {
	t.Helper()
	var got health.Observation
	waitFor(t, 5*time.Second, n.id+"'s observation of "+peer, func() bool {
		for _, o := range n.net.Observations(n.id) {
			if o.Peer == peer {
				got = o
				return true
			}
		}
		return false
	})
	return got
}

// failed checks that o is a failure for reason, recorded lately.
func failed(t *testing.T, o health.Observation, reason, dialedHost string) {
	t.Helper()
	if o.Failure != reason || time.Since(o.FailedAt) > time.Minute || o.DialedHost != dialedHost {
		t.Errorf("observation %+v, want failure %q, dialed host %q", o, reason, dialedHost)
	}
}

func TestObservations(t *testing.T) {
	c := newCluster(t)
	b := c.node(t, "n2", "127.0.0.12")
	b.net.Handle("echo", echo)

	t.Run("Good", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11")
		if err := callEcho(t, a, b); err != nil {
			t.Fatal(err)
		}
		seen := observation(t, a, "n2")
		if seen.Observer != "n1" || seen.Fingerprint != fingerprintOf(b.cert) || !seen.NotAfter.Equal(b.cert.NotAfter) ||
			time.Since(seen.At) > time.Minute || seen.DialedHost != "127.0.0.12" || seen.Failure != "" {
			t.Errorf("the dialer saw %+v, want n2's certificate %s", seen, fingerprintOf(b.cert))
		}
		seen = observation(t, b, "n1")
		if seen.Fingerprint != fingerprintOf(a.cert) || seen.DialedHost != "" || seen.Failure != "" {
			t.Errorf("the acceptor saw %+v, want n1's certificate %s", seen, fingerprintOf(a.cert))
		}
	})
	t.Run("ExpiredDialed", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11")
		old := time.Now().Add(-48 * time.Hour)
		pair := c.ca.pairValid(t, "127.0.0.14", old, old.Add(24*time.Hour))
		ln, err := tls.Listen("tcp", "127.0.0.14:0", &tls.Config{
			Certificates: []tls.Certificate{pair},
			NextProtos:   []string{peernet.ProtoRPC},
			MinVersion:   tls.VersionTLS13,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					conn.(*tls.Conn).Handshake()
				}()
			}
		}()
		a.net.Call(ctxTimeout(t, 10*time.Second), ln.Addr().String(), "echo", echoReq{}, nil)
		failed(t, observation(t, a, ln.Addr().String()), "expired", "127.0.0.14")
	})
	t.Run("ExpiredAccepted", func(t *testing.T) {
		old := time.Now().Add(-48 * time.Hour)
		pair := c.ca.pairValid(t, "127.0.0.15", old, old.Add(24*time.Hour))
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.15")}}
		conn, err := tls.DialWithDialer(d, "tcp", b.addr(), &tls.Config{
			Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true,
			NextProtos: []string{peernet.ProtoRPC}, MinVersion: tls.VersionTLS13,
		})
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Read(make([]byte, 1)) // the server's verdict comes after the client's handshake
			conn.Close()
		}
		failed(t, observation(t, b, "127.0.0.15"), "expired", "")
	})
	t.Run("ForeignCA", func(t *testing.T) {
		other := newTestCA(t, "another CA")
		// n3 trusts both CAs but holds a certificate of the other one,
		// which n2 does not trust.
		n3 := c.node(t, "n3", "127.0.0.13", withCA(other, bundle(t, c.ca, other)))
		callEcho(t, n3, b)
		// Before the proof n2 knows n3 by the host it came from only:
		// n3 dials from the loopback's default source address.
		failed(t, observation(t, b, remoteHostTo(t, b)), "unknown-ca", "")
		// And dialed: n2 finds n3's certificate of an unknown CA.
		n3.net.Handle("echo", echo)
		callEcho(t, b, n3)
		failed(t, observation(t, b, n3.addr()), "unknown-ca", "127.0.0.13")
	})
	t.Run("NameMismatch", func(t *testing.T) {
		a := c.node(t, "n1", "127.0.0.11")
		// n4 listens on 127.0.0.16 with a certificate for 127.0.0.17.
		n4 := c.node(t, "n4", "127.0.0.16", withCertIP("127.0.0.17"))
		n4.net.Handle("echo", echo)
		callEcho(t, a, n4)
		failed(t, observation(t, a, n4.addr()), "name-mismatch", "127.0.0.16")
	})
	t.Run("RefusedAfterTheProof", func(t *testing.T) {
		// A failure after the peer proved its id is kept under the id.
		strict := c.node(t, "n5", "127.0.0.18", withAdmit(func(p peernet.Peer, _ bool) error {
			if err := p.Cert.VerifyHostname("elsewhere.example"); err != nil {
				return fmt.Errorf("the certificate of node %s does not name its host: %w", p.NodeID, err)
			}
			return nil
		}))
		strict.net.Handle("echo", echo)
		a := c.node(t, "n1", "127.0.0.11")
		callEcho(t, a, strict)
		failed(t, observation(t, strict, "n1"), "name-mismatch", "")
	})
}
