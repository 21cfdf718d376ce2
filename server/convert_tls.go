package server

import (
	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/tlsmgr"
)

// The TLS routes answer in the wire types of package api; tlsmgr's own
// types carry no JSON tags, so that changing them cannot change the API.

func apiTLSStatus(s tlsmgr.Status) api.TLSStatus {
	out := api.TLSStatus{
		Pairs:           make([]api.TLSPairStatus, len(s.Pairs)),
		CA:              apiCAStatus(s.CA),
		LastCheck:       s.LastCheck,
		EffectiveExpiry: s.EffectiveExpiry,
	}
	for i, p := range s.Pairs {
		out.Pairs[i] = api.TLSPairStatus{
			Cert:                p.Cert,
			Key:                 p.Key,
			TLSCertificateInfo:  apiCertInfo(p.CertificateInfo),
			EffectiveExpiry:     p.EffectiveExpiry,
			KeyAlgorithm:        p.KeyAlgorithm,
			LastCheck:           p.LastCheck,
			LastReload:          p.LastReload,
			LastRotation:        p.LastRotation,
			LastError:           p.LastError,
			LastErrorReason:     string(p.LastErrorReason),
			ConsecutiveFailures: p.ConsecutiveFailures,
			DiffersFromDisk:     p.DiffersFromDisk,
		}
	}
	return out
}

func apiCAStatus(c tlsmgr.CAStatus) api.TLSCAStatus {
	out := api.TLSCAStatus{
		Path:                c.Path,
		Certificates:        make([]api.TLSCertificateInfo, len(c.Certificates)),
		LastCheck:           c.LastCheck,
		LastReload:          c.LastReload,
		LastError:           c.LastError,
		LastErrorReason:     string(c.LastErrorReason),
		ConsecutiveFailures: c.ConsecutiveFailures,
		DiffersFromDisk:     c.DiffersFromDisk,
	}
	for i, ci := range c.Certificates {
		out.Certificates[i] = apiCertInfo(ci)
	}
	return out
}

func apiCertInfo(c tlsmgr.CertificateInfo) api.TLSCertificateInfo {
	return api.TLSCertificateInfo{
		Subject:     c.Subject,
		SANs:        c.SANs,
		Issuer:      c.Issuer,
		Serial:      c.Serial,
		Fingerprint: c.Fingerprint,
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
	}
}

func apiTLSReloadResult(r tlsmgr.ReloadResult) api.TLSReloadResult {
	out := api.TLSReloadResult{
		Time:    r.Time,
		Pairs:   make([]api.TLSPairResult, len(r.Pairs)),
		CA:      api.TLSFileResult{Path: r.CA.Path, Outcome: api.TLSOutcome(r.CA.Outcome), Reason: string(r.CA.Reason), Error: r.CA.Error},
		Rotated: r.Rotated,
	}
	for i, p := range r.Pairs {
		out.Pairs[i] = api.TLSPairResult{Cert: p.Cert, Key: p.Key, Outcome: api.TLSOutcome(p.Outcome), Reason: string(p.Reason), Error: p.Error}
	}
	return out
}
