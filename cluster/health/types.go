package health

import "time"

// Severity says how urgent a finding is. Critical: consensus is lost, or
// would be within the evaluating node's tls.warn_before. Warning: one
// node's problem. Info: worth knowing.
type Severity string

// The severities, from least to most urgent.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Kind names a finding. The values are part of the API, the logs and the
// metrics and never change meaning.
type Kind string

// The kinds of finding.
const (
	CertExpired     Kind = "cert-expired"      // a node's effective expiry has passed
	CertExpiresSoon Kind = "cert-expires-soon" // within tls.warn_before
	SANMismatch     Kind = "san-mismatch"      // a peer's certificate lacks the host it is dialed at
	CAMismatch      Kind = "ca-mismatch"       // a chain does not verify against another member's CA bundle
	ReloadFailing   Kind = "reload-failing"    // the last reload failed, or the files on disk are not what is served
	StaleReport     Kind = "stale-report"      // no report for two reload intervals
	Unreachable     Kind = "unreachable"       // the live probe failed, or raft lost contact
	ClockSkew       Kind = "clock-skew"        // the probed clock is off by more than 2s beyond half the round trip
	ObservedDiffers Kind = "observed-differs"  // peers see another certificate than the node reports
	ConsensusAtRisk Kind = "consensus-at-risk" // fewer than a quorum of voters would hold a valid certificate
)

// CertReport is one served certificate pair as its node reports it.
type CertReport struct {
	Cert, Key         string // the configured files
	Subject, Issuer   string
	Serial            string // hexadecimal
	Fingerprint       string // SHA-256 of the leaf's DER, hexadecimal
	SANs              []string
	NotBefore         time.Time
	NotAfter          time.Time // the leaf's
	EffectiveNotAfter time.Time // the earliest NotAfter of the verified chain
	LastReload        time.Time
	LastError         string
	LastErrorReason   string
	DiffersFromDisk   bool
	Chain             [][]byte // DER, leaf first: the served chain
}

// NodeReport is what a node records of itself in the cluster state, after
// every certificate load or reload and at least once per reload interval.
type NodeReport struct {
	NodeID         string
	APIAddr        string
	PeerAddr       string
	Version        string
	Time           time.Time // when it was written
	ReloadInterval time.Duration
	WarnBefore     time.Duration
	// Pairs[0] is the pair the node presents on the inter-node listener
	// and on its dials.
	Pairs    []CertReport
	CABundle [][]byte // DER
}

// Member is a server of the raft configuration.
type Member struct {
	ID       string
	PeerAddr string
	Voter    bool
}

// Probe is one member's live answer to the evaluating node.
type Probe struct {
	NodeID      string
	Err         string // not empty: the member could not be asked
	Role        string // "leader", "follower", "candidate"
	Leader      string
	Applied     uint64
	LastContact time.Duration // since its last contact with the leader; 0 on the leader
	Clock       time.Time     // its clock when it answered
	RTT         time.Duration // the round trip of the probe
	// Received is the evaluating node's clock when the answer arrived;
	// zero stands for Input.Now. Clock skew is judged against it, so a
	// caller that sets Now after a slow probe timed out does not make the
	// quick answers look behind.
	Received time.Time
}

// Observation is what one node saw of a peer in inter-node handshakes.
type Observation struct {
	Observer    string // the node that saw it
	Peer        string // the peer's node id, or its address when the id is unknown
	DialedHost  string // the host the observer dialed, "" for an accepted connection
	Fingerprint string // of the certificate the peer presented last
	NotAfter    time.Time
	At          time.Time
	FailedAt    time.Time // the last failed handshake with the peer, zero if none
	Failure     string    // "expired", "unknown-ca", "name-mismatch" or another reason
}

// Input is everything Evaluate looks at.
type Input struct {
	Now             time.Time
	Self            string // the evaluating node
	Members         []Member
	Leader          string
	Reports         map[string]NodeReport // by node id; members without one are missing from it
	Probes          []Probe
	Observations    []Observation
	ElectionTimeout time.Duration
	WarnBefore      time.Duration // the evaluating node's tls.warn_before
	ReloadInterval  time.Duration // used for a report that does not say its own
}

// Finding is one thing wrong, or worth knowing, about the cluster.
type Finding struct {
	Kind     Kind
	Severity Severity
	Nodes    []string  // the nodes it is about, sorted
	At       time.Time // the moment it refers to (an expiry, when consensus is at risk); zero if none
	// Message is the finding in the words of the log, for example
	// "Certificate of node n3 expires in 36h" or "Consensus at risk from
	// 2026-12-01 04:00:00: certificates of n2, n3 expire".
	Message string
}

// Key identifies a finding across evaluations (its kind and nodes), so that
// a node logs a new or changed finding once and its clearing once.
func (f Finding) Key() string {
	k := string(f.Kind)
	for _, n := range f.Nodes {
		k += " " + n
	}
	return k
}

// Result is what Evaluate decides.
type Result struct {
	Findings []Finding // most severe first
	// Healthy holds when every member is reachable and caught up, no
	// reload fails and no finding is critical. Expiry warnings alone do
	// not make a cluster unhealthy.
	Healthy         bool
	ConsensusAtRisk time.Time // zero when it is not at risk
}
