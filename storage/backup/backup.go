// Package backup is the file format of a minkms backup: a short header that
// says what the backup holds, followed by a complete state file (see package
// storage) with its values sealed as they are on disk.
//
// The layout, in order:
//
//	magic    8 bytes  "MINKMSBK"
//	length   4 bytes  big-endian length of the header
//	header   length bytes of JSON (Header)
//	checksum 32 bytes SHA-256 of the header bytes
//	state    Header.StateSize bytes: the state file
//
// The header names the format version, the cluster the backup was taken
// from, the check value of the root key its values are sealed under, the
// applied index and term of the state and the time it was taken, and the
// size and SHA-256 of the state that follows, so that a truncated or
// damaged backup is found before it is restored. The package has no
// dependency beyond the standard library, so that the SDK can read a
// backup's header too.
//
// A backup holds no key in the clear: without the root key it is useless,
// and it restores only into a cluster with the same root key.
package backup

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Format is the version of the backup format this build writes and reads.
const Format = 1

// Magic opens every backup.
const Magic = "MINKMSBK"

// maxHeader bounds the header a reader accepts.
const maxHeader = 64 << 10

// ErrFormat is returned (wrapped) for bytes that are not a backup of a
// format this build reads: a wrong magic, a truncated file, a header whose
// checksum does not match, a state whose size or digest differs from the
// header's.
var ErrFormat = errors.New("not a valid minkms backup")

// Header describes a backup.
type Header struct {
	Format       int       `json:"format"`
	ClusterID    string    `json:"cluster_id"`
	NodeID       string    `json:"node_id"`        // the node that took it
	RootKeyCheck string    `json:"root_key_check"` // hex; see storage.RootKeyCheck
	Index        uint64    `json:"index"`          // the applied index of the state
	Term         uint64    `json:"term"`           // the term of the entry at Index
	Created      time.Time `json:"created"`
	StateSize    int64     `json:"state_size"`   // bytes of state after the header
	StateSHA256  string    `json:"state_sha256"` // hex
}

// SameRootKey reports, in constant time, whether the header's root key
// check value is check.
func (h *Header) SameRootKey(check []byte) bool {
	have, err := hex.DecodeString(h.RootKeyCheck)
	return err == nil && subtle.ConstantTimeCompare(have, check) == 1
}

func (h *Header) valid() error {
	switch {
	case h.Format != Format:
		return fmt.Errorf("%w: format version %d, this build reads %d", ErrFormat, h.Format, Format)
	case h.StateSize <= 0:
		return fmt.Errorf("%w: no state size in the header", ErrFormat)
	case !isHex(h.StateSHA256, sha256.Size):
		return fmt.Errorf("%w: no state digest in the header", ErrFormat)
	case !isHex(h.RootKeyCheck, 0):
		return fmt.Errorf("%w: no root key check value in the header", ErrFormat)
	}
	return nil
}

func isHex(s string, size int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) > 0 && (size == 0 || len(b) == size)
}

// WriteHeader writes the magic, the header and its checksum to w. The
// state, h.StateSize bytes whose SHA-256 is h.StateSHA256, must follow.
func WriteHeader(w io.Writer, h Header) error {
	h.Format = Format
	if err := h.valid(); err != nil {
		return err
	}
	js, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode backup header: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(Magic)
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(js))))
	buf.Write(js)
	sum := sha256.Sum256(js)
	buf.Write(sum[:])
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write backup header: %w", err)
	}
	return nil
}

// ReadHeader reads the magic, the header and its checksum from r, which is
// then at the start of the state. Use Reader to read the state and check
// it against the header.
func ReadHeader(r io.Reader) (Header, error) {
	var h Header
	var fixed [len(Magic) + 4]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return h, fmt.Errorf("%w: reading the header: %w", ErrFormat, err)
	}
	if string(fixed[:len(Magic)]) != Magic {
		return h, fmt.Errorf("%w: it does not start with %q", ErrFormat, Magic)
	}
	n := binary.BigEndian.Uint32(fixed[len(Magic):])
	if n == 0 || n > maxHeader {
		return h, fmt.Errorf("%w: header length %d", ErrFormat, n)
	}
	js := make([]byte, int(n)+sha256.Size)
	if _, err := io.ReadFull(r, js); err != nil {
		return h, fmt.Errorf("%w: reading the header: %w", ErrFormat, err)
	}
	js, sum := js[:n], js[n:]
	if want := sha256.Sum256(js); subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return h, fmt.Errorf("%w: the header's checksum does not match: it was damaged or changed", ErrFormat)
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return h, fmt.Errorf("%w: decoding the header: %w", ErrFormat, err)
	}
	if err := h.valid(); err != nil {
		return h, err
	}
	return h, nil
}

// Reader reads the state of a backup after ReadHeader: exactly
// Header.StateSize bytes. Its last Read before io.EOF returns an error
// wrapping ErrFormat if the state is short, longer, or not the one the
// header's digest names.
type Reader struct {
	r      io.Reader
	h      Header
	left   int64
	digest hash.Hash
	err    error
}

// NewReader returns a Reader of the state that follows h in r.
func NewReader(r io.Reader, h Header) *Reader {
	return &Reader{r: r, h: h, left: h.StateSize, digest: sha256.New()}
}

func (s *Reader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.left == 0 {
		s.err = s.finish()
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.digest.Write(p[:n])
	s.left -= int64(n)
	if errors.Is(err, io.EOF) && s.left > 0 {
		s.err = fmt.Errorf("%w: truncated: the state ends %d bytes short of the header's %d", ErrFormat, s.left, s.h.StateSize)
		return n, s.err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
		return n, err
	}
	return n, nil
}

// finish checks the digest and that nothing follows the state.
func (s *Reader) finish() error {
	var one [1]byte
	if n, _ := io.ReadFull(s.r, one[:]); n > 0 {
		return fmt.Errorf("%w: bytes follow the state's %d", ErrFormat, s.h.StateSize)
	}
	if hex.EncodeToString(s.digest.Sum(nil)) != s.h.StateSHA256 {
		return fmt.Errorf("%w: the state's SHA-256 differs from the header's: it was damaged or changed", ErrFormat)
	}
	return io.EOF
}
