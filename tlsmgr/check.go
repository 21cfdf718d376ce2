package tlsmgr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// CheckConfig names the files that Check validates offline, as
// `minkms cert check` takes them from a config file or from flags.
type CheckConfig struct {
	Certs      []Pair
	CA         string        // "" skips the chain check
	Host       string        // "" skips the SAN check
	PeerHost   string        // the host of the inter-node address, also checked when set
	Now        time.Time     // zero: time.Now()
	WarnBefore time.Duration // default 48h
}

// CheckConfig returns what Check validates for a Manager built from c: the
// same pairs, CA bundle, host and warning period.
func (c Config) CheckConfig() CheckConfig {
	return CheckConfig{Certs: c.Certs, CA: c.CA, Host: c.Host, PeerHost: c.PeerHost, WarnBefore: c.WarnBefore}
}

// Finding is one result of Check: a step that passed (OK) or a problem.
type Finding struct {
	OK     bool   `json:"ok"`
	File   string `json:"file"`
	What   string `json:"what"`   // the step: "CA bundle", "certificate", "private key", "key match", "algorithm", "validity", "SANs", "key usage", "chain", "expiry"
	Detail string `json:"detail"` // dates, SANs, algorithm, chain; never key material
	Reason Reason `json:"reason,omitempty"`
}

func (f Finding) String() string {
	status := "ok"
	if !f.OK {
		status = "PROBLEM"
	}
	return fmt.Sprintf("%-7s %s: %s: %s", status, f.File, f.What, f.Detail)
}

// Check validates the files of cfg offline with the same code as a
// Manager's reload and returns every finding, in order: the CA bundle, then
// per pair each step that passed, the first problem (later steps are not
// checked) or the expiry. A check passed when no finding has OK false.
func Check(cfg CheckConfig) []Finding {
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	warnBefore := cfg.WarnBefore
	if warnBefore <= 0 {
		warnBefore = DefaultWarnBefore
	}
	var findings []Finding
	problem := func(file, what string, err error) {
		f := Finding{File: file, What: what, Detail: err.Error(), Reason: reasonOf(err)}
		var v *ValidationError
		if errors.As(err, &v) {
			f.File, f.Detail = v.File, v.Err.Error()
		}
		findings = append(findings, f)
	}

	var ca *caBundle
	if cfg.CA != "" {
		files, err := readCA(cfg.CA)
		if err == nil {
			ca, err = parseCA(cfg.CA, files)
		}
		if err != nil {
			problem(cfg.CA, "CA bundle", err)
		} else {
			var names []string
			for _, c := range ca.certs {
				names = append(names, fmt.Sprintf("%s (expires %s)", c.Subject, formatTime(c.NotAfter)))
			}
			findings = append(findings, Finding{OK: true, File: cfg.CA, What: "CA bundle",
				Detail: fmt.Sprintf("%d certificate(s): %s", len(ca.certs), strings.Join(names, "; "))})
		}
	}

	for _, p := range cfg.Certs {
		f, err := readPair(p)
		if err != nil {
			problem(p.Cert, "files", err)
			continue
		}
		env := checkEnv{ca: ca, host: cfg.Host, peerHost: cfg.PeerHost, now: now, note: func(what, detail string) {
			findings = append(findings, Finding{OK: true, File: p.Cert, What: what, Detail: detail})
		}}
		c, err := validatePair(p, f, env)
		f.clear()
		if err != nil {
			problem(p.Cert, stepOf(reasonOf(err)), err)
			continue
		}
		if cfg.CA != "" && ca == nil {
			findings = append(findings, Finding{File: p.Cert, What: "chain", Reason: ReasonChain,
				Detail: "not checked: the CA bundle is invalid"})
		}
		left := c.expiry.Sub(now)
		exp := Finding{OK: true, File: p.Cert, What: "expiry",
			Detail: fmt.Sprintf("effective expiry %s (in %s)", formatTime(c.expiry), formatLeftLong(left))}
		if left <= warnBefore {
			exp.OK, exp.Detail = false, expiresMessage(p.Cert, left)
		}
		findings = append(findings, exp)
	}
	return findings
}

// stepOf names the Check step a reason belongs to.
func stepOf(r Reason) string {
	switch r {
	case ReasonCertUnreadable, ReasonKeyUnreadable:
		return "files"
	case ReasonKeyMismatch:
		return "key match"
	case ReasonEncryptedKey, ReasonBadKey:
		return "private key"
	case ReasonAlgorithm:
		return "algorithm"
	case ReasonNotYetValid, ReasonExpired:
		return "validity"
	case ReasonHostMismatch:
		return "SANs"
	case ReasonKeyUsage:
		return "key usage"
	case ReasonChain:
		return "chain"
	default:
		return "certificate"
	}
}
