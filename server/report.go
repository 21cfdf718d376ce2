package server

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/minkms/minkms/cluster/health"
	"github.com/minkms/minkms/tlsmgr"
)

// nodeReport is this node's report to the cluster (cluster.Config.Report):
// its version, its TLS settings and what it serves — for each pair the
// summary of tlsmgr's status with the served chain in DER, and the CA
// bundle in DER — so that every node can judge every node's certificates.
// The cluster node adds its id, its addresses and the time.
//
// A failed reload of the CA bundle has no place of its own in a report: it
// is reported on every pair that has no failure of its own, so that it
// counts as a failing reload of the node.
func (s *Server) nodeReport() health.NodeReport {
	st, chains, ca := s.servedTLS()
	r := health.NodeReport{
		APIAddr:        s.cfg.Cluster.Advertise,
		PeerAddr:       s.cfg.Cluster.AdvertisePeer,
		Version:        Version,
		ReloadInterval: s.cfg.TLS.ReloadInterval,
		WarnBefore:     s.cfg.TLS.WarnBefore,
		CABundle:       ca,
	}
	for i, p := range st.Pairs {
		c := health.CertReport{
			Cert:              p.Cert,
			Key:               p.Key,
			Subject:           p.Subject,
			Issuer:            p.Issuer,
			Serial:            p.Serial,
			Fingerprint:       p.Fingerprint,
			SANs:              p.SANs,
			NotBefore:         p.NotBefore.UTC(),
			NotAfter:          p.NotAfter.UTC(),
			EffectiveNotAfter: p.EffectiveExpiry.UTC(),
			LastReload:        p.LastReload.UTC(),
			LastError:         p.LastError,
			LastErrorReason:   string(p.LastErrorReason),
			DiffersFromDisk:   p.DiffersFromDisk || st.CA.DiffersFromDisk,
		}
		if c.LastError == "" && st.CA.LastError != "" {
			c.LastError = "CA bundle " + st.CA.Path + ": " + st.CA.LastError
			c.LastErrorReason = string(st.CA.LastErrorReason)
		}
		if i < len(chains) {
			c.Chain = chains[i]
		}
		r.Pairs = append(r.Pairs, c)
	}
	return r
}

// servedTLS reads the TLS status and the served DER of one generation: a
// reload between the two reads is noticed by the fingerprints and the
// reads are made again (a few times: a report of mixed generations is
// rewritten at the next upkeep anyway).
func (s *Server) servedTLS() (tlsmgr.Status, [][][]byte, [][]byte) {
	for attempt := 1; ; attempt++ {
		st := s.certs.Status()
		chains, ca := s.certs.Served()
		if sameGeneration(st, chains) || attempt == 3 {
			return st, chains, ca
		}
	}
}

func sameGeneration(st tlsmgr.Status, chains [][][]byte) bool {
	if len(st.Pairs) != len(chains) {
		return false
	}
	for i, p := range st.Pairs {
		if len(chains[i]) == 0 {
			return false
		}
		sum := sha256.Sum256(chains[i][0])
		if hex.EncodeToString(sum[:]) != p.Fingerprint {
			return false
		}
	}
	return true
}
