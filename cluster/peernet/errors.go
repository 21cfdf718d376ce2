package peernet

import (
	"errors"
	"fmt"
	"net"
)

// Errors of the peer network. Refusals at the proof wrap one of the reasons
// below, on both sides: the side that found the problem returns (and logs) it
// directly, the other side gets it wrapped in ErrRefused.
var (
	// ErrRootKey is the reason when the other node's proof does not verify:
	// it does not hold this cluster's root key.
	ErrRootKey = errors.New("peernet: does not hold this cluster's root key")

	// ErrOtherCluster is the reason when both nodes are in a cluster and
	// the cluster ids differ.
	ErrOtherCluster = errors.New("peernet: belongs to another cluster")

	// ErrCertificate is the reason when a certificate is refused: it does
	// not chain to the CA bundle, or it does not name the host the node
	// announces.
	ErrCertificate = errors.New("peernet: certificate refused")

	// ErrNotAdmitted is the reason when Config.Admit refused the other
	// node. On the side that called Admit, Admit's own error is wrapped too.
	ErrNotAdmitted = errors.New("peernet: not admitted")

	// ErrProtocol is the reason when the other side does not speak the
	// protocol: no or an unknown ALPN protocol, a malformed or oversized
	// frame.
	ErrProtocol = errors.New("peernet: protocol violation")

	// ErrRefused is returned by a dial (and so by Dial and Call) when the
	// other side refused the connection; the error also wraps the reason
	// the other side sent (one of the above) and carries its words.
	ErrRefused = errors.New("peernet: refused by the other node")

	// ErrUnreachable is returned by Call when the request never reached
	// the other node: the dial, the TLS handshake or the proof failed, or
	// the connection broke before the request was written. The handler did
	// not run; "could not ask", never "asked and got an error".
	ErrUnreachable = errors.New("peernet: node unreachable")

	// ErrNoAnswer is returned by Call when the request was sent but no
	// answer came (deadline, connection lost). The handler may or may not
	// have run.
	ErrNoAnswer = errors.New("peernet: no answer")

	// ErrClosed is returned after Close (and by a stream layer's Accept
	// after its Close). It is net.ErrClosed, so raft and net/http treat it
	// as the end of a listener.
	ErrClosed = net.ErrClosed
)

// wireCode is how a refusal reason crosses the wire in an error frame.
var wireCodes = []struct {
	code string
	err  error
}{
	{"root-key", ErrRootKey},
	{"cluster", ErrOtherCluster},
	{"certificate", ErrCertificate},
	{"admit", ErrNotAdmitted},
	{"protocol", ErrProtocol},
}

func codeOf(err error) string {
	for _, c := range wireCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "protocol"
}

func reasonOf(code string) error {
	for _, c := range wireCodes {
		if c.code == code {
			return c.err
		}
	}
	return ErrProtocol
}

// failure is an error with its own words that still matches its reason
// (errors.Is) and the cause, if any.
type failure struct {
	msg    string
	public string // what the other node is told; msg when empty
	reason error
	cause  error
}

func (f *failure) publicMsg() string {
	if f.public != "" {
		return f.public
	}
	return f.msg
}

func (f *failure) Error() string { return f.msg }

func (f *failure) Unwrap() []error {
	if f.cause == nil {
		return []error{f.reason}
	}
	return []error{f.reason, f.cause}
}

func fail(reason, cause error, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), reason: reason, cause: cause}
}

// refuse is a failure whose words for the other node differ from the log's.
func refuse(reason, cause error, public, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), public: public, reason: reason, cause: cause}
}

// refusal is what the side that was refused returns: the other side's words
// and reason, wrapped in ErrRefused.
func refusal(addr, code, text string) error {
	return &failure{
		msg:    fmt.Sprintf("peernet: %s refused the connection: %s", addr, text),
		reason: ErrRefused,
		cause:  reasonOf(code),
	}
}
