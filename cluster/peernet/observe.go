package peernet

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/minkms/minkms/cluster/health"
)

// What this node saw of its peers: per peer, the certificate it presented
// in the last successful inter-node handshake and the last handshake that
// failed because of the peer, with the reason. Other nodes ask for these
// (cluster's health.observations) to see, for example, that a peer
// presents a certificate without the host it is dialed at, or another
// certificate than it reports.
//
// A peer is known by its node id once it has proven it; before that (a
// failed TLS handshake, a failed proof) by the address it was dialed at (or
// by the id last proven at that address) or, for an accepted connection,
// by the host it came from.

// maxObserved bounds the peers remembered: failed handshakes from strangers
// must not grow the map without end. The oldest is forgotten first.
const maxObserved = 256

// maxFailureText bounds the text kept for another reason.
const maxFailureText = 300

type observations struct {
	mu     sync.Mutex
	byPeer map[string]*health.Observation
	ids    map[string]string // peer address → the node id last proven there
}

// Observations returns what this node saw of each peer, with Observer set
// to self, ordered by peer.
func (n *Network) Observations(self string) []health.Observation {
	o := &n.observed
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]health.Observation, 0, len(o.byPeer))
	for _, ob := range o.byPeer {
		c := *ob
		c.Observer = self
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// observeProven records the certificate of a peer that proved who it is.
// dialed is the address it was dialed at, "" for an accepted connection.
func (n *Network) observeProven(p Peer, dialed string) {
	if p.Cert == nil || p.NodeID == "" {
		return
	}
	sum := sha256.Sum256(p.Cert.Raw)
	o := &n.observed
	o.mu.Lock()
	defer o.mu.Unlock()
	ob := o.entry(p.NodeID)
	ob.Fingerprint, ob.NotAfter, ob.At = hex.EncodeToString(sum[:]), p.Cert.NotAfter, time.Now()
	if dialed != "" {
		ob.DialedHost = hostOnly(dialed)
		o.learn(dialed, p.NodeID)
	}
	o.learn(p.PeerAddr, p.NodeID)
}

// observeFailure records a handshake or proof that failed because of the
// peer. id is its node id if it proved it (a check after the proof
// failed), else ""; addr is the dialed address or the remote host; dialed
// tells which. Failures that say nothing of the peer's certificate or
// proof — network errors, timeouts, the peer refusing this node — are not
// recorded: the peer records those of its own side.
func (n *Network) observeFailure(id, addr string, dialed bool, err error) {
	if !peersFault(err) {
		return
	}
	o := &n.observed
	o.mu.Lock()
	defer o.mu.Unlock()
	key := id
	if key == "" {
		key = addr
		if known := o.ids[addr]; known != "" && dialed {
			key = known
		}
	}
	ob := o.entry(key)
	ob.FailedAt, ob.Failure = time.Now(), failureReason(err)
	if dialed {
		ob.DialedHost = hostOnly(addr)
	}
}

// entry returns the observation of key, made room for if new. o.mu is held.
func (o *observations) entry(key string) *health.Observation {
	if ob := o.byPeer[key]; ob != nil {
		return ob
	}
	if o.byPeer == nil {
		o.byPeer = make(map[string]*health.Observation)
		o.ids = make(map[string]string)
	}
	if len(o.byPeer) >= maxObserved {
		var oldest string
		var at time.Time
		for k, ob := range o.byPeer {
			last := ob.At
			if ob.FailedAt.After(last) {
				last = ob.FailedAt
			}
			if oldest == "" || last.Before(at) {
				oldest, at = k, last
			}
		}
		delete(o.byPeer, oldest)
	}
	ob := &health.Observation{Peer: key}
	o.byPeer[key] = ob
	return ob
}

// learn notes that id proved itself at the peer address addr. (Not the
// host an accepted connection comes from: several nodes may connect from
// one, and a failure would be pinned on the wrong one.) o.mu is held.
func (o *observations) learn(addr, id string) {
	if addr == "" {
		return
	}
	if len(o.ids) >= maxObserved {
		clear(o.ids)
	}
	o.ids[addr] = id
}

// peersFault reports whether err is a failure of the peer's certificate or
// proof, not of the network or of this node.
func peersFault(err error) bool {
	switch {
	case err == nil, isNetErr(err), errors.Is(err, ErrRefused), errors.Is(err, ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return false
	}
	return true
}

// failureReason classifies a failed handshake: health.FailureExpired (the
// peer's certificate has expired), health.FailureUnknownCA (its chain does
// not verify against this node's CA bundle), health.FailureNameMismatch (it
// does not name the host it was dialed at or announces), or the error's
// text.
func failureReason(err error) string {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return health.FailureExpired
	case errors.As(err, &unknown):
		return health.FailureUnknownCA
	case errors.As(err, &name):
		return health.FailureNameMismatch
	}
	text := err.Error()
	if len(text) > maxFailureText {
		text = text[:maxFailureText] + "…"
	}
	return text
}

func hostOnly(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// provenID returns the id of a peer whose proof failed after its MAC
// verified (a check of its Hello, its certificate's names, Admit), "" when
// it did not get that far and its id is only claimed.
func provenID(p Peer, err error) string {
	if errors.Is(err, ErrOtherCluster) || errors.Is(err, ErrCertificate) || errors.Is(err, ErrNotAdmitted) {
		return p.NodeID
	}
	return ""
}
