package tlsmgr

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/minkms/minkms/tlsmgr/pki"
)

// DevPKI names the files written by WriteDevPKI.
type DevPKI struct {
	CACert string // the CA certificate (ca.crt)
	CAKey  string // the CA private key (ca.key, 0600)
	Cert   string // the node certificate (node.crt)
	Key    string // the node private key (node.key, 0600)
}

// WriteDevPKI writes a development PKI into dir: an ECDSA P-256 CA (ca.crt,
// ca.key) and a node certificate signed by it (node.crt, node.key) for
// hosts, with IP addresses as IP SANs and names as DNS SANs, usable for both
// server and client authentication. Both are valid from a minute ago for
// validity; the CA outlives the node certificate by an hour. Existing files
// are replaced. It is meant for development and tests, never for
// production; package pki makes the certificates.
func WriteDevPKI(dir string, hosts []string, validity time.Duration) (DevPKI, error) {
	if len(hosts) == 0 {
		return DevPKI{}, errors.New("tlsmgr: dev PKI: no hosts")
	}
	if validity <= 0 {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: invalid validity %v", validity)
	}
	ca, err := pki.NewCA(pki.CAOptions{Name: "minkms development CA", Validity: validity + time.Hour})
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
	}
	opts := pki.LeafOptions{Validity: validity}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			opts.IPs = append(opts.IPs, ip)
		} else {
			opts.Hosts = append(opts.Hosts, h)
		}
	}
	node, err := ca.Issue(opts)
	if err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
	}
	p := DevPKI{
		CACert: filepath.Join(dir, "ca.crt"),
		CAKey:  filepath.Join(dir, "ca.key"),
		Cert:   filepath.Join(dir, "node.crt"),
		Key:    filepath.Join(dir, "node.key"),
	}
	if err := ca.WriteFiles(p.CACert, p.CAKey, true); err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
	}
	if err := node.WriteFiles(p.Cert, p.Key, true); err != nil {
		return DevPKI{}, fmt.Errorf("tlsmgr: dev PKI: %w", err)
	}
	return p, nil
}
