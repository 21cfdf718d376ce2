// Package health decides whether a minkms cluster is healthy, and what is
// wrong when it is not, from what the nodes report of themselves and of
// each other. It is one pure function, Evaluate, over plain data: the
// nodes' certificate reports from the replicated state, the live probes of
// every member, the handshakes observed between them, the raft
// configuration and the clock. It does no I/O and reads no clock, so it is
// tested table by table and every node computes the same findings from the
// same facts. It is not where those facts are gathered (cluster, peernet)
// nor where findings are logged, served or exported (server).
//
// Its purpose is to flag a certificate problem before it costs the quorum:
// when the certificates of two of three voters expire at 04:00 next
// Tuesday, consensus is at risk from then, and the operator learns it days
// ahead, from any node.
//
// # What is looked at
//
// Only the members of the raft configuration (Input.Members) are judged;
// reports, probes and observations of other nodes are ignored. An
// observation names its peer by node id, or by address when the id is
// unknown: the address is matched against the members' configured and
// reported peer addresses, and an observation that matches no member is
// ignored. An observation without an Observer was made by Input.Self. A
// handshake "fails" when its last attempt failed: Failure and FailedAt are
// set and no successful handshake (At) came after FailedAt. All times are
// compared as given; Now is the evaluating node's clock.
//
// # Findings
//
// Every finding is a warning (one node's problem) except
// consensus-at-risk, which is critical or info. At most one finding of a
// kind exists per set of nodes, so Finding.Key identifies it across
// evaluations. The messages avoid times that move with Now, so that a
// finding whose facts did not change reads the same from one evaluation to
// the next; the exceptions are the remaining time of cert-expires-soon
// ("expires in 36h", which the certificate warnings promise), the skew of
// clock-skew (rounded like FormatLeft) and error texts as the probes and
// reports give them. At is zero unless a kind below says otherwise; the
// At of consensus-at-risk is Now when consensus is at risk now.
//
//   - cert-expired, cert-expires-soon (one node): the node's effective
//     expiry, the earliest EffectiveNotAfter of its report's pairs, is at or
//     before Now / within Input.WarnBefore of Now (the boundary included).
//     "Certificate of node n3 expired on 2026-12-01 04:00:00" (UTC) /
//     "Certificate of node n3 expires in 36h" (FormatLeft). At: the expiry.
//   - san-mismatch (the peer): a handshake with the peer fails with
//     "name-mismatch"; the message names the hosts it was dialed at and
//     the observers.
//   - ca-mismatch (two nodes): the served chain of one (Pairs[0].Chain)
//     does not verify against the CA bundle of the other, for server or for
//     client authentication, at a moment the chain is valid (an expired
//     certificate is cert-expired, not this), or a handshake between them
//     fails with "unknown-ca". Both directions are one finding.
//   - reload-failing (one node): a pair of its report has LastError set, or
//     DiffersFromDisk; the message gives the file, the reason and the error.
//   - stale-report (one node): it has no report, or its report is older
//     than two reload intervals (its report's ReloadInterval, else
//     Input.ReloadInterval; exactly two is not stale; neither set: not
//     judged). At: the report's time.
//   - unreachable (one node): it was not probed, its probe failed, or it is
//     not the leader and its LastContact with the leader is longer than
//     Input.ElectionTimeout.
//   - clock-skew (one node): |Clock − (Received − RTT/2)| > MaxClockSkew +
//     RTT/2, where Received is when the probe's answer arrived (else Now):
//     the clock is off by more than 2s wherever in the round trip it was
//     read.
//   - observed-differs (one node): a peer saw it present a certificate
//     whose fingerprint is none of its reported pairs', in a handshake more
//     than MaxClockSkew after the report was written (earlier, it is a
//     rotation not yet reported).
//   - consensus-at-risk (the nodes it depends on): the earliest moment
//     from which fewer than a quorum of voters can take part: when the
//     (V−q+1)-th voter certificate expires (with three voters the second),
//     now if the largest group of voters that verify each other's chains is
//     smaller than a quorum, now if fewer than a quorum of voters answer.
//     Critical when that moment is within Input.WarnBefore of Now or past,
//     info otherwise. "Consensus at risk from 2026-12-01 04:00:00:
//     certificates of n2, n3 expire". Result.ConsensusAtRisk is its At.
//
// Findings are sorted by severity (critical first), then kind, then nodes.
//
// # Healthy
//
// A cluster is healthy when its members are known, every member answered
// its probe and is in contact with the leader (no unreachable finding), a
// leader is known (Input.Leader, else the member whose probe says it leads)
// and every member's applied index is at most MaxAppliedLag entries behind
// the leader's in the same round of probes, no reload is failing, and no
// finding is critical. Expiry warnings, stale reports, skewed clocks and
// name, chain or observation warnings alone do not make it unhealthy;
// readiness, `minkms cluster status --check` and `--wait-healthy` share
// this one predicate. A follower that lags has no finding of its own: the
// member table's applied indexes show it.
package health
