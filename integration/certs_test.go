package integration_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// issueNodeCert signs a new node certificate for 127.0.0.1 and localhost
// with the node's development CA and returns PEM cert, PEM key and serial.
func issueNodeCert(tb testing.TB, n *Node) (certPEM, keyPEM []byte, serial *big.Int) {
	tb.Helper()
	caCert := mustReadCert(tb, n.PKI.CACert)
	caKeyPEM, err := os.ReadFile(n.PKI.CAKey)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(caKeyPEM)
	if block == nil {
		tb.Fatal("CA key is not PEM")
	}
	caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if k, err2 := x509.ParseECPrivateKey(block.Bytes); err2 == nil {
			caKey = k
		} else {
			tb.Fatalf("parsing CA key: %v", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "minkms node (rotated)"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), serial
}

func mustReadCert(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		tb.Fatalf("%s is not PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// servedSerial dials the node on a new connection and returns the serial of
// the certificate it presents.
func servedSerial(tb testing.TB, n *Node) *big.Int {
	tb.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.Addr, n.tlsConfig(nil))
	if err != nil {
		tb.Fatalf("dialing %s: %v", n.Addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// replaceFile writes data next to path and renames it over path, as
// operators and config management tools do.
func replaceFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// tlsStatus is the part of GET /v1/tls/status the tests read.
type tlsStatus struct {
	Pairs []struct {
		Cert                string    `json:"cert"`
		Serial              string    `json:"serial"`
		LastCheck           time.Time `json:"last_check"`
		LastError           string    `json:"last_error"`
		LastErrorReason     string    `json:"last_error_reason"`
		ConsecutiveFailures int       `json:"consecutive_failures"`
		DiffersFromDisk     bool      `json:"differs_from_disk"`
	} `json:"pairs"`
	LastCheck time.Time `json:"last_check"`
}

func getTLSStatus(tb testing.TB, n *Node) tlsStatus {
	tb.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: n.tlsConfig(n.AdminKey)}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(n.URL + "/v1/tls/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /v1/tls/status: %s", resp.Status)
	}
	var s tlsStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		tb.Fatal(err)
	}
	if len(s.Pairs) == 0 {
		tb.Fatal("TLS status has no pairs")
	}
	return s
}

// TestCertificateRotation replaces a running node's certificate files
// while a client keeps working: new connections get the new certificate
// within seconds and no request fails. Then garbage is written over the
// files: the node keeps serving the last good certificate, says why in
// /v1/tls/status and logs a WARN line.
func TestCertificateRotation(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	ctx := ctxT(t)
	admin := n.Client(n.AdminKey)
	if err := admin.CreateKey(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	oldSerial := servedSerial(t, n)

	// A client that keeps working, each request on a fresh connection so
	// that handshakes happen throughout the rotation.
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		requests atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := n.Client(n.AdminKey)
			ct, err := c.Encrypt(ctx, "busy", []byte("still here"), nil)
			if err == nil {
				_, err = c.Decrypt(ctx, "busy", ct, nil)
			}
			requests.Add(1)
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, "the client to make requests", func() bool { return requests.Load() > 5 })

	certPEM, keyPEM, newSerial := issueNodeCert(t, n)
	replaceFile(t, n.PKI.Key, keyPEM)
	replaceFile(t, n.PKI.Cert, certPEM)
	replaced := time.Now()
	waitFor(t, 10*time.Second, "the new certificate to be served", func() bool {
		return servedSerial(t, n).Cmp(newSerial) == 0
	})
	t.Logf("new certificate served %v after the files were replaced", time.Since(replaced).Round(time.Millisecond))
	if servedSerial(t, n).Cmp(oldSerial) == 0 {
		t.Fatal("old certificate still served")
	}
	before := requests.Load()
	waitFor(t, 10*time.Second, "requests on the new certificate", func() bool { return requests.Load() > before+5 })
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", f, requests.Load(), firstErr.Load())
	}

	// Garbage over the certificate: the last good one keeps serving.
	if err := os.WriteFile(n.PKI.Cert, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st tlsStatus
	waitFor(t, 10*time.Second, "the bad certificate to be reported in /v1/tls/status", func() bool {
		st = getTLSStatus(t, n)
		return st.Pairs[0].LastError != "" && st.Pairs[0].ConsecutiveFailures > 0
	})
	if st.Pairs[0].Serial != newSerial.Text(16) {
		t.Errorf("status shows serial %s, want the last good %s", st.Pairs[0].Serial, newSerial.Text(16))
	}
	if !st.Pairs[0].DiffersFromDisk {
		t.Error("status does not say the served certificate differs from the file on disk")
	}
	if got := servedSerial(t, n); got.Cmp(newSerial) != 0 {
		t.Fatalf("served serial %x after a bad reload, want the last good %x", got, newSerial)
	}
	waitFor(t, 10*time.Second, "a WARN line about the bad certificate", func() bool {
		return hasLogLine(n.Log.String(), "WARN", n.PKI.Cert)
	})
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d requests failed after the bad reload; first: %v", f, firstErr.Load())
	}
}

// TestCertificateReloadOnSIGHUP checks that SIGHUP makes a running node
// check its certificate files: with nothing else to trigger a check (no
// file change, a 60-minute interval), the last check time advances.
func TestCertificateReloadOnSIGHUP(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	first := getTLSStatus(t, n).Pairs[0].LastCheck
	n.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "a certificate check after SIGHUP", func() bool {
		return getTLSStatus(t, n).Pairs[0].LastCheck.After(first)
	})

}

// hasLogLine reports whether a JSON log line at level has a field or
// message that mentions what.
func hasLogLine(log, level, what string) bool {
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["level"] == level && strings.Contains(line, what) {
			return true
		}
	}
	return false
}

// TestCertCommands drives the certificate commands an operator uses on a
// real node: cert check on its files, cert status, and cert reload (the
// admin API trigger).
func TestCertCommands(t *testing.T) {
	n := MustStartNode(t, NodeOptions{})
	admin := n.AdminKey

	out := n.MustCLI(nil, "cert", "check", "--config", n.Config)
	if !strings.Contains(out, "No problems found") {
		t.Fatalf("cert check --config on good files:\n%s", out)
	}

	var st struct {
		Pairs []struct {
			Serial    string    `json:"serial"`
			LastCheck time.Time `json:"last_check"`
		} `json:"pairs"`
	}
	mustJSON(t, n.MustCLI(admin, "cert", "status", "--json"), &st)
	served := servedSerial(t, n).Text(16)
	if len(st.Pairs) != 1 || st.Pairs[0].Serial != served {
		t.Fatalf("cert status = %+v, want one pair with serial %s", st, served)
	}
	first := st.Pairs[0].LastCheck

	var res struct {
		Pairs []struct {
			Result string `json:"result"`
		} `json:"pairs"`
	}
	mustJSON(t, n.MustCLI(admin, "cert", "reload", "--json"), &res)
	if len(res.Pairs) != 1 || res.Pairs[0].Result != "unchanged" {
		t.Fatalf("cert reload of unchanged files = %+v, want unchanged", res)
	}
	mustJSON(t, n.MustCLI(admin, "cert", "status", "--json"), &st)
	if !st.Pairs[0].LastCheck.After(first) {
		t.Fatalf("last check %v did not advance after cert reload (was %v)", st.Pairs[0].LastCheck, first)
	}

	// Only cluster admins may reload; the refusal is exit 2.
	if r := n.CLI(MustAPIKey(t), "cert", "reload"); r.Code != 2 {
		t.Fatalf("cert reload by an unknown identity: exit %d, want 2\n%s", r.Code, r.Stderr)
	}

	// A broken file is a problem for cert check (exit 1) while the node
	// goes on serving what it has.
	if err := os.WriteFile(n.PKI.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := n.CLI(nil, "cert", "check", "--config", n.Config); r.Code != 1 {
		t.Fatalf("cert check on a broken key: exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := servedSerial(t, n).Text(16); got != served {
		t.Fatalf("served serial %s after a broken key, want %s", got, served)
	}
}

// TestInvalidCertificateRefusesStart: a node does not start with an
// invalid certificate, and its error names the file and the reason.
func TestInvalidCertificateRefusesStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		breakf func(n *Node) string // breaks the node's files, returns the file to be named
		reason string
	}{
		{"MissingKey", func(n *Node) string { os.Remove(n.PKI.Key); return n.PKI.Key }, "no such file or directory"},
		{"GarbageCert", func(n *Node) string {
			os.WriteFile(n.PKI.Cert, []byte("garbage"), 0o600)
			return n.PKI.Cert
		}, "PEM"},
		{"KeyOfAnotherCert", func(n *Node) string {
			_, keyPEM, _ := issueNodeCert(t, n)
			os.WriteFile(n.PKI.Key, keyPEM, 0o600)
			return n.PKI.Key
		}, "match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := MustNewNode(t, NodeOptions{})
			file := tc.breakf(n)
			n.Start()
			exited, err := n.Exited(30 * time.Second)
			if !exited || err == nil {
				t.Fatalf("node with a broken certificate started (exited %v, %v)", exited, err)
			}
			log := n.Log.String()
			if !strings.Contains(log, file) || !strings.Contains(log, tc.reason) {
				t.Fatalf("the refusal does not name %s and %q:\n%s", file, tc.reason, log)
			}
		})
	}
}
