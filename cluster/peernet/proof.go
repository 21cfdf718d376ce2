package peernet

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

const (
	// proofLabel is the TLS exporter label of the proof, and the first
	// input of both MACs.
	proofLabel = "EXPORTER-minkms-peer-proof-v1"
	// proofKeyInfo separates the proof key from every other key derived
	// from the root key.
	proofKeyInfo = "minkms peer proof key v1"
	ekmLen       = 32
	// maxFrame bounds a proof frame; a Hello is three short strings.
	maxFrame = 4 << 10

	roleDialer   = "dialer"
	roleAcceptor = "acceptor"
)

// ProofKey derives the key of the peer proof from the cluster root key
// (HKDF-SHA256 with a label of its own), so the root key itself is never used
// for anything but deriving. Every node of a cluster derives the same key.
func ProofKey(rootKey []byte) ([]byte, error) {
	if len(rootKey) < 16 {
		return nil, errors.New("peernet: root key too short")
	}
	key, err := hkdf.Key(sha256.New, rootKey, nil, proofKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("peernet: proof key: %w", err)
	}
	return key, nil
}

// canonical is the byte form of a Hello that the MACs cover: every field
// prefixed by its length, so no two Hellos share one.
func canonical(h Hello) []byte {
	var b []byte
	for _, s := range []string{h.NodeID, h.ClusterID, h.PeerAddr} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// proofMAC is HMAC-SHA256(key, label || role || ekm || canonical(hellos)...).
// The dialer's MAC covers its own Hello; the acceptor's covers both, so each
// answer is bound to this TLS session (ekm), to its direction and to what
// both nodes said.
func proofMAC(key []byte, role string, ekm []byte, hellos ...Hello) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(proofLabel))
	m.Write([]byte(role))
	m.Write(ekm)
	for _, h := range hellos {
		m.Write(canonical(h))
	}
	return m.Sum(nil)
}

func exportEKM(cs tls.ConnectionState) ([]byte, error) {
	if cs.Version != tls.VersionTLS13 {
		return nil, fail(ErrProtocol, nil, "peernet: TLS 1.3 required")
	}
	ekm, err := cs.ExportKeyingMaterial(proofLabel, nil, ekmLen)
	if err != nil {
		return nil, fail(ErrProtocol, err, "peernet: exporting keying material: %v", err)
	}
	return ekm, nil
}

// frame is one message of the proof, sent as a 4-byte big-endian length and
// that many bytes of JSON. The dialer sends a hello, the acceptor answers
// with a hello or an error, the dialer confirms with ok or an error.
type frame struct {
	NodeID    string `json:"node_id,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
	PeerAddr  string `json:"peer_addr,omitempty"`
	MAC       []byte `json:"mac,omitempty"`
	OK        bool   `json:"ok,omitempty"`
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"` // the reason of Error (wireCodes)
}

func helloFrame(h Hello, mac []byte) frame {
	return frame{NodeID: h.NodeID, ClusterID: h.ClusterID, PeerAddr: h.PeerAddr, MAC: mac}
}

func errorFrame(err error) frame {
	return frame{Error: publicText(err), Code: codeOf(err)}
}

func (f frame) hello() Hello {
	return Hello{NodeID: f.NodeID, ClusterID: f.ClusterID, PeerAddr: f.PeerAddr}
}

func writeFrame(w io.Writer, f frame) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if len(body) > maxFrame {
		return fail(ErrProtocol, nil, "peernet: proof frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err = w.Write(append(buf, body...))
	return err
}

// readFrame reads exactly one frame and nothing beyond it: what follows on
// the connection belongs to raft or HTTP.
func readFrame(r io.Reader) (frame, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return frame{}, err
	}
	size := binary.BigEndian.Uint32(head[:])
	if size == 0 || size > maxFrame {
		return frame{}, fail(ErrProtocol, nil, "peernet: proof frame of %d bytes (at most %d)", size, maxFrame)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(body, &f); err != nil {
		return frame{}, fail(ErrProtocol, err, "peernet: malformed proof frame: %v", err)
	}
	return f, nil
}

// publicText is what the other node is told about a refusal: the words of
// the check that failed, without this package's prefix.
func publicText(err error) string {
	var f *failure
	if errors.As(err, &f) && f.reason != ErrRefused {
		return f.publicMsg()
	}
	return err.Error()
}
