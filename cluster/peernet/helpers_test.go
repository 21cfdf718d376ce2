package peernet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/minkms/minkms/cluster/peernet"
	"github.com/minkms/minkms/tlsmgr"
)

// testCA is a CA of the test PKI.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of the CA certificate
}

func newTestCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "ca.crt")
	writePEM(tb, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		tb.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(tb testing.TB, file, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// issue writes a leaf for ip (server and client auth) into certFile and
// keyFile and returns it.
func (ca *testCA) issue(tb testing.TB, ip, certFile, keyFile string) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(tb),
		Subject:      pkix.Name{CommonName: ip},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	// Write the key first and rename both into place, so a reload never
	// sees a new certificate with the old key.
	writePEM(tb, keyFile+".new", "PRIVATE KEY", keyDER)
	writePEM(tb, certFile+".new", "CERTIFICATE", der)
	for _, f := range []string{keyFile, certFile} {
		if err := os.Rename(f+".new", f); err != nil {
			tb.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// tlsPair issues a leaf for ip and returns it as a tls.Certificate.
func (ca *testCA) tlsPair(tb testing.TB, ip string) tls.Certificate {
	tb.Helper()
	dir := tb.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	ca.issue(tb, ip, certFile, keyFile)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	return pair
}

// bundle writes a CA bundle of several CAs.
func bundle(tb testing.TB, cas ...*testCA) string {
	tb.Helper()
	var b bytes.Buffer
	for _, ca := range cas {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	}
	file := filepath.Join(tb.TempDir(), "bundle.crt")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

// logBuffer collects log output of one node.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// admission is one call of Config.Admit.
type admission struct {
	at     string // the node that admitted
	peer   peernet.Peer
	dialed bool
}

// admissions records the Admit calls of several nodes.
type admissions struct {
	mu   sync.Mutex
	list []admission
}

func (a *admissions) add(x admission) {
	a.mu.Lock()
	a.list = append(a.list, x)
	a.mu.Unlock()
}

func (a *admissions) any(match func(admission) bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.list {
		if match(x) {
			return true
		}
	}
	return false
}

// node is one test node: its TLS manager, its network and its logs.
type node struct {
	id       string
	ip       string
	certFile string
	keyFile  string
	cert     *x509.Certificate
	mgr      *tlsmgr.Manager
	net      *peernet.Network
	logs     *logBuffer

	mu    sync.Mutex
	hello peernet.Hello
}

type nodeOpts struct {
	ca        *testCA // issues the node certificate (default: the cluster's)
	bundle    string  // CA bundle (default: the issuing CA)
	rootKey   []byte
	clusterID string
	admit     func(peernet.Peer, bool) error
	record    *admissions
	configure func(*peernet.Config)
	certIP    string // the address the certificate names (default: the one it listens on)
}

// cluster is what test nodes share: a CA and a root key.
type cluster struct {
	ca      *testCA
	rootKey []byte
	admits  *admissions
}

func newCluster(tb testing.TB) *cluster {
	return &cluster{ca: newTestCA(tb, "minkms test CA"), rootKey: randomKey(tb), admits: &admissions{}}
}

func randomKey(tb testing.TB) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func (c *cluster) node(tb testing.TB, id, ip string, opts ...func(*nodeOpts)) *node {
	tb.Helper()
	o := nodeOpts{ca: c.ca, rootKey: c.rootKey, record: c.admits}
	for _, f := range opts {
		f(&o)
	}
	if o.bundle == "" {
		o.bundle = o.ca.file
	}
	dir := tb.TempDir()
	n := &node{id: id, ip: ip, certFile: filepath.Join(dir, "node.crt"), keyFile: filepath.Join(dir, "node.key"), logs: &logBuffer{}}
	certIP := ip
	if o.certIP != "" {
		certIP = o.certIP
	}
	n.cert = o.ca.issue(tb, certIP, n.certFile, n.keyFile)
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr, err := tlsmgr.New(tlsmgr.Config{
		Certs:  []tlsmgr.Pair{{Cert: n.certFile, Key: n.keyFile}},
		CA:     o.bundle,
		Host:   certIP,
		Logger: discard,
	})
	if err != nil {
		tb.Fatal(err)
	}
	n.mgr = mgr
	proofKey, err := peernet.ProofKey(o.rootKey)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := peernet.Config{
		Self:     n.self,
		ProofKey: proofKey,
		TLS:      mgr,
		Admit: func(p peernet.Peer, dialed bool) error {
			if o.record != nil {
				o.record.add(admission{at: id, peer: p, dialed: dialed})
			}
			if o.admit != nil {
				return o.admit(p, dialed)
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	nw, err := peernet.Listen(net.JoinHostPort(ip, "0"), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nw.Close() })
	n.net = nw
	n.hello = peernet.Hello{NodeID: id, ClusterID: o.clusterID, PeerAddr: nw.Addr().String()}
	return n
}

func (n *node) self() peernet.Hello {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hello
}

func (n *node) addr() string { return n.net.Addr().String() }

func withRootKey(k []byte) func(*nodeOpts)    { return func(o *nodeOpts) { o.rootKey = k } }
func withClusterID(id string) func(*nodeOpts) { return func(o *nodeOpts) { o.clusterID = id } }
func withCA(ca *testCA, bundle string) func(*nodeOpts) {
	return func(o *nodeOpts) { o.ca, o.bundle = ca, bundle }
}
func withAdmit(f func(peernet.Peer, bool) error) func(*nodeOpts) {
	return func(o *nodeOpts) { o.admit = f }
}
func withCertIP(ip string) func(*nodeOpts) { return func(o *nodeOpts) { o.certIP = ip } }
func withConfig(f func(*peernet.Config)) func(*nodeOpts) {
	return func(o *nodeOpts) { o.configure = f }
}

// waitFor waits until cond holds, failing the test after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// mustFail checks that err matches every one of want and says what it says.
func mustFail(tb testing.TB, err error, text string, want ...error) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want one saying %q", text)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			tb.Errorf("error %q does not match %v", err, w)
		}
	}
	if !strings.Contains(err.Error(), text) {
		tb.Errorf("error %q does not say %q", err, text)
	}
}

func raftAddr(n *node) raft.ServerAddress { return raft.ServerAddress(n.addr()) }

func raftAddrOf(addr string) raft.ServerAddress { return raft.ServerAddress(addr) }
