package main

// cert ca and cert issue make a small PKI for a cluster with package
// tlsmgr/pki; they work offline.

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/minkms/minkms/tlsmgr/pki"
	"github.com/spf13/cobra"
)

// writtenFiles is what cert ca and cert issue print with --json.
type writtenFiles struct {
	Cert     string    `json:"cert"`
	Key      string    `json:"key"`
	NotAfter time.Time `json:"not_after"`
}

// keyTypeHelp lists the key types for flag usage lines.
func keyTypeHelp() string {
	names := make([]string, 0, len(pki.KeyTypes()))
	for _, kt := range pki.KeyTypes() {
		names = append(names, string(kt))
	}
	return strings.Join(names, ", ")
}

func (c *cli) certCA() *cobra.Command {
	var (
		dir, name, keyType string
		validity           time.Duration
		force              bool
	)
	cmd := &cobra.Command{
		Use:   "ca --out DIR",
		Short: "Create a CA for node certificates",
		Long: `Create a self-signed CA and write its certificate to DIR/ca.crt (0644) and its
private key to DIR/ca.key (0600), creating DIR. The CA signs node
certificates only (no intermediate CAs). Existing files are never replaced
unless --force is given.

Give ca.crt to every node (tls.ca) and every client (MINKMS_CACERT); keep
ca.key offline, where only 'minkms cert issue' needs it.`,
		Example: `  minkms cert ca --out /root/minkms-pki
  minkms cert ca --out pki --name "kms.example.net CA" --validity 43800h --key-type rsa-3072`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&dir, "out", "", "the directory to write ca.crt and ca.key into")
	f.StringVar(&name, "name", pki.DefaultCAName, "the CA's common name")
	f.DurationVar(&validity, "validity", pki.DefaultCAValidity, "how long the CA is valid")
	f.StringVar(&keyType, "key-type", string(pki.DefaultKeyType), "the key type: "+keyTypeHelp())
	f.BoolVar(&force, "force", false, "replace existing files")
	cmd.MarkFlagRequired("out")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kt, err := pki.ParseKeyType(keyType)
		if err != nil {
			return err
		}
		if validity <= 0 {
			return fmt.Errorf("--validity %v: must be positive", validity)
		}
		ca, err := pki.NewCA(pki.CAOptions{Name: name, Validity: validity, KeyType: kt})
		if err != nil {
			return err
		}
		w := writtenFiles{Cert: filepath.Join(dir, "ca.crt"), Key: filepath.Join(dir, "ca.key"), NotAfter: ca.Cert.NotAfter}
		if err := ca.WriteFiles(w.Cert, w.Key, force); err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, w)
		}
		_, err = fmt.Fprintf(c.stdout, `Wrote the CA %q, valid until %s:

  certificate:  %s   (give it to every node and client)
  private key:  %s   (keep it offline)

Next, one certificate per node:

  minkms cert issue --ca-cert %s --ca-key %s --host kms-1.example.net --out %s
`, name, when(ca.Cert.NotAfter), w.Cert, w.Key, w.Cert, w.Key, filepath.Join(dir, "n1"))
		return err
	}
	return cmd
}

func (c *cli) certIssue() *cobra.Command {
	var (
		caCert, caKey, prefix, keyType string
		hosts, ips                     []string
		validity                       time.Duration
		force                          bool
	)
	cmd := &cobra.Command{
		Use:   "issue --ca-cert FILE --ca-key FILE --host HOST|--ip IP --out PREFIX",
		Short: "Issue a node certificate signed by a CA",
		Long: `Issue a new key and a certificate for it, signed by the CA of --ca-cert and
--ca-key, and write them to PREFIX.crt (0644) and PREFIX.key (0600,
unencrypted PKCS#8). Existing files are never replaced unless --force is
given.

The certificate names every --host (DNS names) and --ip (IP addresses) in
its SANs; the first becomes its common name. List every name and address
that clients and peers use to reach the node: the host of cluster.advertise
and that of cluster.advertise_peer must be among them. It serves for both
server and client authentication, as a node needs, and must not outlive
the CA.`,
		Example: `  minkms cert issue --ca-cert pki/ca.crt --ca-key pki/ca.key \
      --host kms-1.example.net --ip 10.0.0.1 --out pki/n1
  minkms cert issue --ca-cert pki/ca.crt --ca-key pki/ca.key \
      --host kms-2.example.net,kms.example.net --validity 2160h --out pki/n2 --json`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&caCert, "ca-cert", "", "the CA certificate (ca.crt)")
	f.StringVar(&caKey, "ca-key", "", "the CA private key (ca.key)")
	f.StringSliceVar(&hosts, "host", nil, "a DNS name for the SANs (repeat or separate with commas)")
	f.StringSliceVar(&ips, "ip", nil, "an IP address for the SANs (repeat or separate with commas)")
	f.StringVar(&prefix, "out", "", "write PREFIX.crt and PREFIX.key (e.g. pki/n1)")
	f.DurationVar(&validity, "validity", pki.DefaultLeafValidity, "how long the certificate is valid")
	f.StringVar(&keyType, "key-type", string(pki.DefaultKeyType), "the key type: "+keyTypeHelp())
	f.BoolVar(&force, "force", false, "replace existing files")
	for _, name := range []string{"ca-cert", "ca-key", "out"} {
		cmd.MarkFlagRequired(name)
	}
	cmd.MarkFlagsOneRequired("host", "ip")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kt, err := pki.ParseKeyType(keyType)
		if err != nil {
			return err
		}
		if validity <= 0 {
			return fmt.Errorf("--validity %v: must be positive", validity)
		}
		if strings.HasSuffix(prefix, ".crt") || strings.HasSuffix(prefix, ".key") {
			return fmt.Errorf("--out %s: give the name without .crt or .key (it writes PREFIX.crt and PREFIX.key)", prefix)
		}
		opts := pki.LeafOptions{Hosts: hosts, Validity: validity, KeyType: kt}
		for _, s := range ips {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				return fmt.Errorf("--ip %q: not an IP address", s)
			}
			opts.IPs = append(opts.IPs, ip)
		}
		ca, err := pki.LoadCA(caCert, caKey)
		if err != nil {
			return err
		}
		leaf, err := ca.Issue(opts)
		if err != nil {
			return err
		}
		w := writtenFiles{Cert: prefix + ".crt", Key: prefix + ".key", NotAfter: leaf.Cert.NotAfter}
		if err := leaf.WriteFiles(w.Cert, w.Key, force); err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, w)
		}
		sans := append([]string(nil), leaf.Cert.DNSNames...)
		for _, ip := range leaf.Cert.IPAddresses {
			sans = append(sans, ip.String())
		}
		_, err = fmt.Fprintf(c.stdout, `Issued a certificate for %s, valid until %s:

  certificate:  %s
  private key:  %s

Check it with the node's advertised host before deploying it:

  minkms cert check --cert %s --key %s --ca %s --host %s
`, strings.Join(sans, ", "), when(leaf.Cert.NotAfter), w.Cert, w.Key, w.Cert, w.Key, caCert, sans[0])
		return err
	}
	return cmd
}
