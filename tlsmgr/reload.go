package tlsmgr

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Reload checks the CA bundle and every pair on disk now and serves what
// changed and passed validation. Content that equals what is served is a
// no-op; a refused candidate changes nothing (the last good one keeps
// serving) and is logged and counted. When anything new is served, the new
// snapshot replaces the old one in one atomic swap and subscribers are
// told. Reload returns what happened to each pair and to the CA bundle.
//
// Reloads run one at a time. If ctx ends before the reload is done (also
// while it waits for another one to finish), Reload returns promptly with
// every part Failed for ReasonCanceled: nothing is swapped, and nothing is
// counted as a failure of the certificates.
func (m *Manager) Reload(ctx context.Context) ReloadResult {
	select {
	case m.reloading <- struct{}{}:
	case <-ctx.Done():
		return m.canceled(ctx)
	}
	defer func() { <-m.reloading }()
	if ctx.Err() != nil {
		return m.canceled(ctx)
	}

	now := m.clock.Now()
	old := m.snap.Load()
	res := ReloadResult{Time: now, CA: FileResult{Path: m.cfg.CA, Outcome: Unchanged}}

	ca, caChanged, caErr := m.checkCA(old.ca)
	if caErr != nil {
		res.CA.Outcome, res.CA.Reason, res.CA.Error = Failed, reasonOf(caErr), caErr.Error()
	}
	if ctx.Err() != nil {
		return m.canceled(ctx)
	}
	pairs, results, diskDiffers, errs := m.checkPairs(old, ca, now)
	if caChanged {
		// A new CA bundle is accepted only if everything that will be
		// served chains to it; otherwise the old bundle stays, with the
		// pairs checked against it.
		if err := servedChainTo(pairs, ca, now); err != nil {
			caErr = err
			res.CA.Outcome, res.CA.Reason, res.CA.Error = Failed, reasonOf(err), err.Error()
			ca, caChanged = old.ca, false
			pairs, results, diskDiffers, errs = m.checkPairs(old, ca, now)
		} else {
			res.CA.Outcome = Reloaded
		}
	}
	res.Pairs = results
	for _, r := range results {
		if r.Outcome == Reloaded {
			res.Rotated = true
		}
	}
	res.Rotated = res.Rotated || caChanged
	if ctx.Err() != nil { // the last moment before anything is swapped
		return m.canceled(ctx)
	}
	var next *snapshot
	if res.Rotated {
		next = m.newSnapshot(pairs, ca)
	}
	m.record(next, res, caErr, diskDiffers, now)
	m.logResult(res, caErr, errs, pairs)
	m.warnExpiry(pairs, now)
	if res.Rotated {
		m.notify()
	}
	select {
	case m.reloaded <- struct{}{}:
	default: // Run has yet to take the previous one
	}
	return res
}

// canceled is the result of a reload abandoned because ctx ended: every
// part Failed for ReasonCanceled, with the context's error.
func (m *Manager) canceled(ctx context.Context) ReloadResult {
	msg := fmt.Sprintf("reload canceled: %v", context.Cause(ctx))
	res := ReloadResult{
		Time: m.clock.Now(),
		CA:   FileResult{Path: m.cfg.CA, Outcome: Failed, Reason: ReasonCanceled, Error: msg},
	}
	for _, p := range m.cfg.Certs {
		res.Pairs = append(res.Pairs, PairResult{Cert: p.Cert, Key: p.Key, Outcome: Failed, Reason: ReasonCanceled, Error: msg})
	}
	m.log.Info("TLS certificate reload canceled; the served certificates stay", slog.String("error", context.Cause(ctx).Error()))
	return res
}

// changedOnDisk reports whether the CA bundle or any pair on disk differs
// from what is served or cannot be read, that is whether a Reload would do
// or report anything. It changes nothing and logs nothing.
func (m *Manager) changedOnDisk() bool {
	s := m.snap.Load()
	files, err := readCA(m.cfg.CA)
	if err != nil || files.hash != s.ca.hash {
		return true
	}
	for i, p := range m.cfg.Certs {
		f, err := readPair(p)
		if err != nil {
			return true
		}
		same := sameContent(f.certHash, f.keyHash, s.pairs[i].certHash, s.pairs[i].keyHash)
		f.clear()
		if !same {
			return true
		}
	}
	return false
}

// checkCA reads the CA bundle and reports whether it differs from the
// served one. On failure it returns the served bundle and the reason.
func (m *Manager) checkCA(served *caBundle) (*caBundle, bool, error) {
	files, err := readCA(m.cfg.CA)
	if err != nil {
		return served, false, err
	}
	if files.hash == served.hash {
		return served, false, nil
	}
	ca, err := parseCA(m.cfg.CA, files)
	if err != nil {
		return served, false, err
	}
	return ca, true, nil
}

// checkPairs reads and validates every pair against ca. It returns what is
// to be served (a refused pair keeps its served candidate), the result per
// pair and, per pair, whether the files on disk differ from what is served.
func (m *Manager) checkPairs(old *snapshot, ca *caBundle, now time.Time) ([]*candidate, []PairResult, []bool, []error) {
	pairs := make([]*candidate, len(old.pairs))
	results := make([]PairResult, len(old.pairs))
	differs := make([]bool, len(old.pairs))
	errs := make([]error, len(old.pairs))
	for i, p := range m.cfg.Certs {
		served := old.pairs[i]
		pairs[i] = served
		results[i] = PairResult{Cert: p.Cert, Key: p.Key, Outcome: Unchanged}

		f, err := readPair(p)
		if err != nil {
			results[i].Outcome, results[i].Reason, results[i].Error = Failed, reasonOf(err), err.Error()
			errs[i] = err
			differs[i] = true
			continue
		}
		same := sameContent(f.certHash, f.keyHash, served.certHash, served.keyHash)
		if same && ca == served.ca {
			f.clear()
			continue
		}
		c, err := validatePair(p, f, checkEnv{ca: ca, host: m.cfg.Host, peerHost: m.cfg.PeerHost, now: now})
		f.clear()
		if err != nil {
			results[i].Outcome, results[i].Reason, results[i].Error = Failed, reasonOf(err), err.Error()
			errs[i] = err
			differs[i] = !same
			continue
		}
		pairs[i] = c
		if !same {
			results[i].Outcome = Reloaded
		}
	}
	return pairs, results, differs, errs
}

// servedChainTo reports whether every pair about to be served verifies
// against the CA bundle ca.
func servedChainTo(pairs []*candidate, ca *caBundle, now time.Time) error {
	for _, c := range pairs {
		if c.ca == ca {
			continue // validated against ca just now
		}
		at := now
		if c.leaf.NotBefore.After(at) {
			at = c.leaf.NotBefore
		}
		if _, err := verifyChain(c.pair.Cert, c.chain, ca, at); err != nil {
			return invalid(ca.path, ReasonChain, "the served certificate %s does not chain to the new CA bundle", c.pair.Cert)
		}
	}
	return nil
}

// record serves next, unless it is nil, and updates the bookkeeping behind
// Status and the metrics in the same critical section, so that Status never
// shows a new certificate with the bookkeeping of the old one.
func (m *Manager) record(next *snapshot, res ReloadResult, caErr error, diskDiffers []bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if next != nil {
		m.snap.Store(next)
	}
	m.lastCheck = now
	update := func(s *fileState, o Outcome, reason Reason, msg string) {
		s.lastCheck = now
		switch o {
		case Failed:
			s.lastErr, s.lastReason = msg, reason
			s.failures++
		case Reloaded:
			s.lastRotation = now
			fallthrough
		default:
			s.lastReload = now
			s.lastErr, s.lastReason, s.failures = "", "", 0
		}
	}
	for i, r := range res.Pairs {
		update(&m.pairs[i], r.Outcome, r.Reason, r.Error)
		m.pairs[i].differs = diskDiffers[i]
	}
	update(&m.ca, res.CA.Outcome, res.CA.Reason, res.CA.Error)
	m.ca.differs = caErr != nil

	switch {
	case res.Failed():
		m.runs.failed++
		m.runs.consecutiveFailures++
	case res.Rotated:
		m.runs.reloaded++
	default:
		m.runs.unchanged++
	}
	if !res.Failed() {
		m.runs.consecutiveFailures = 0
		m.runs.lastSuccess = now
	}
}

// logResult logs the refused candidates and the accepted ones.
func (m *Manager) logResult(res ReloadResult, caErr error, errs []error, served []*candidate) {
	if caErr != nil {
		m.logCAFailure(caErr)
	} else if res.CA.Outcome == Reloaded {
		m.log.Info(fmt.Sprintf("Reloaded CA certificates %s", m.cfg.CA), slog.String("ca", m.cfg.CA))
	}
	for i, r := range res.Pairs {
		p := m.cfg.Certs[i]
		switch r.Outcome {
		case Failed:
			m.logPairFailure(p, errs[i])
		case Reloaded:
			c := served[i]
			m.log.Info(fmt.Sprintf("Reloaded server certificate %s", p.Cert),
				slog.String("cert", p.Cert), slog.String("serial", c.leaf.SerialNumber.Text(16)),
				slog.Time("expiry", c.expiry))
		}
	}
}
