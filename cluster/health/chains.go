package health

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// pair is two members, in order (a < b).
type pair struct{ a, b string }

func newPair(x, y string) pair {
	if y < x {
		x, y = y, x
	}
	return pair{x, y}
}

// chainMatrix is which members can verify each other: for every pair of
// members that cannot, why (one sentence per direction or observation).
type chainMatrix struct {
	failures map[pair]map[string]bool
}

// chains builds the matrix. For every ordered pair of members A ≠ B with
// reports, A's served chain (its Pairs[0].Chain: the leaf, then the
// intermediates) must verify against B's CABundle as the roots, for server
// authentication and for client authentication both (B dials A and A dials
// B), at a moment the chain itself is valid: Now, clamped into the
// intersection of the chain's validity periods (else the leaf's). An
// expired certificate is cert-expired, not ca-mismatch; a CA of B's bundle
// that has expired at that moment is a mismatch. Host names are not
// checked here (that is san-mismatch). A member whose report has no chain,
// or whose bundle is empty or holds no certificate that parses, is not
// judged in that role; a chain that does not parse does not verify.
//
// A handshake observed to fail with "unknown-ca" (its last handshake, see
// failing) between an observer and a peer, both members, is a mismatch of
// that pair too, whichever side refused.
func (v *view) chains() chainMatrix {
	m := chainMatrix{failures: make(map[pair]map[string]bool)}
	add := func(p pair, why string) {
		if m.failures[p] == nil {
			m.failures[p] = make(map[string]bool)
		}
		m.failures[p][why] = true
	}
	roots := make(map[string]*x509.CertPool)
	for _, id := range v.ids {
		if pool := bundlePool(v.reports[id].CABundle); pool != nil {
			roots[id] = pool
		}
	}
	for _, a := range v.ids {
		r, ok := v.reports[a]
		if !ok || len(r.Pairs) == 0 || len(r.Pairs[0].Chain) == 0 {
			continue
		}
		chain, perr := parseChain(r.Pairs[0].Chain)
		for _, b := range v.ids {
			pool, ok := roots[b]
			if b == a || !ok {
				continue
			}
			err := perr
			if err == nil {
				err = verifyChain(chain, pool, v.in.Now)
			}
			if err != nil {
				add(newPair(a, b), fmt.Sprintf("Certificate of node %s does not verify against the CA bundle of node %s%s", a, b, describeVerifyError(err)))
			}
		}
	}
	for _, o := range v.in.Observations {
		obs, peer := v.resolvePeer(v.observer(o)), v.resolvePeer(o.Peer)
		if obs == "" || peer == "" || obs == peer || !failing(o) || o.Failure != FailureUnknownCA {
			continue
		}
		add(newPair(obs, peer), fmt.Sprintf("Handshake of node %s with node %s fails: unknown certificate authority", obs, peer))
	}
	return m
}

// compatible reports whether nothing says a and b cannot verify each other.
func (m chainMatrix) compatible(a, b string) bool { return len(m.failures[newPair(a, b)]) == 0 }

// findings is one ca-mismatch per pair of members that cannot verify each
// other, naming both, with every reason in the message. A warning: one
// member's bundle or chain; whether it costs the quorum is
// consensus-at-risk's to say.
func (m chainMatrix) findings() []Finding {
	ps := make([]pair, 0, len(m.failures))
	for p := range m.failures {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y pair) int {
		if c := strings.Compare(x.a, y.a); c != 0 {
			return c
		}
		return strings.Compare(x.b, y.b)
	})
	out := make([]Finding, 0, len(ps))
	for _, p := range ps {
		out = append(out, Finding{
			Kind: CAMismatch, Severity: Warning, Nodes: []string{p.a, p.b},
			Message: strings.Join(sortedKeys(m.failures[p]), "; "),
		})
	}
	return out
}

// bundlePool is the certificates of a bundle that parse, nil if none does.
func bundlePool(der [][]byte) *x509.CertPool {
	var pool *x509.CertPool
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			continue
		}
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AddCert(c)
	}
	return pool
}

func parseChain(der [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(der))
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("its chain does not parse: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// verifyChain verifies chain[0] with chain[1:] as intermediates against
// roots, for server and for client authentication, at verifyTime.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	at := verifyTime(chain, now)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := chain[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{u},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// verifyTime is now clamped into the period in which every certificate of
// the chain is valid, or into the leaf's if they do not overlap.
func verifyTime(chain []*x509.Certificate, now time.Time) time.Time {
	lo, hi := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if lo.After(hi) {
		lo, hi = chain[0].NotBefore, chain[0].NotAfter
	}
	switch {
	case now.Before(lo):
		return lo
	case now.After(hi):
		return hi
	}
	return now
}

// describeVerifyError is the end of the sentence "Certificate of node a
// does not verify against the CA bundle of node b": nothing for an unknown
// authority (the sentence says it), and words without times otherwise, so
// that the message does not change from one evaluation to the next.
func describeVerifyError(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return ""
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ": a CA certificate is expired or not yet valid"
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return ": not valid for both server and client authentication"
	}
	return ": " + err.Error()
}
