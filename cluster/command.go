package cluster

import (
	"encoding/binary"
	"fmt"

	"github.com/minkms/minkms/storage/kv"
)

// A command is what the raft log holds: one type byte, one version byte and
// a body whose layout the pair determines. Nodes of a newer build may write
// types or versions an older one does not know; those decode to an error,
// never a panic, and the FSM answers them with that error.

// CommandType says what a raft command does. Values are part of the log
// format and never change meaning; a new type takes a value no type ever
// had.
type CommandType uint8

const (
	// CommandChange applies a kv.Change whose values are sealed.
	CommandChange CommandType = 1
	// CommandNodeReport records a node's report of itself (its addresses,
	// version and certificates) in the cluster's area cluster/nodes, under
	// the node's id. Only the node itself writes it: the leader refuses a
	// forwarded report of another node.
	CommandNodeReport CommandType = 2
)

// changeVersion is the body layout of CommandChange this build writes.
// DecodeCommand also reads version 1, which raft logs and snapshots written
// by older builds hold.
//
// Version 2 body, all integers unsigned varints:
//
//	count of conditions, then each: kind byte, bucket, name, revision, code
//	count of mutations,  then each: kind byte, bucket, name, value
//
// where bucket, name, code and value are a length and that many bytes.
// Version 1 is the same without the code of a condition (decoded as "").
const changeVersion = 2

// reportVersion is the body layout of CommandNodeReport:
//
//	node id, report
//
// each a length (unsigned varint) and that many bytes; the report is the
// node's JSON report sealed for the entry cluster/nodes/<node id>.
const reportVersion = 1

// Command is a decoded raft command.
type Command struct {
	Type   CommandType
	Change kv.Change    // for CommandChange; Put values are sealed
	Report SealedReport // for CommandNodeReport
}

// SealedReport is the body of CommandNodeReport.
type SealedReport struct {
	NodeID string
	Value  []byte // sealed for the entry cluster/nodes/<NodeID>
}

// StateChange returns the change c makes to the state: the change itself,
// or for a node report a Put of the report under the node's id.
func (c Command) StateChange() kv.Change {
	if c.Type == CommandNodeReport {
		return kv.Change{Apply: []kv.Mutation{{Kind: kv.Put, Bucket: nodesBucket, Name: c.Report.NodeID, Value: c.Report.Value}}}
	}
	return c.Change
}

// EncodeCommand returns the log bytes of c.
func EncodeCommand(c Command) ([]byte, error) {
	switch c.Type {
	case CommandChange:
		return encodeChange(c.Change), nil
	case CommandNodeReport:
		if c.Report.NodeID == "" {
			return nil, fmt.Errorf("encode command: %w: a node report without a node id", ErrCommand)
		}
		r := c.Report
		b := make([]byte, 0, 2+2*binary.MaxVarintLen64+len(r.NodeID)+len(r.Value))
		b = append(b, byte(CommandNodeReport), reportVersion)
		b = appendBytes(b, []byte(r.NodeID))
		return appendBytes(b, r.Value), nil
	}
	return nil, fmt.Errorf("encode command: %w: unknown type %d", ErrCommand, c.Type)
}

func encodeChange(ch kv.Change) []byte {
	size := 2 + 2*binary.MaxVarintLen64
	for _, r := range ch.Require {
		size += 1 + 4*binary.MaxVarintLen64 + len(r.Bucket) + len(r.Name) + len(r.Code)
	}
	for _, m := range ch.Apply {
		size += 1 + 3*binary.MaxVarintLen64 + len(m.Bucket) + len(m.Name) + len(m.Value)
	}
	b := make([]byte, 0, size)
	b = append(b, byte(CommandChange), changeVersion)
	b = binary.AppendUvarint(b, uint64(len(ch.Require)))
	for _, r := range ch.Require {
		b = append(b, byte(r.Kind))
		b = appendBytes(b, []byte(r.Bucket))
		b = appendBytes(b, []byte(r.Name))
		b = binary.AppendUvarint(b, r.Revision)
		b = appendBytes(b, []byte(r.Code))
	}
	b = binary.AppendUvarint(b, uint64(len(ch.Apply)))
	for _, m := range ch.Apply {
		b = append(b, byte(m.Kind))
		b = appendBytes(b, []byte(m.Bucket))
		b = appendBytes(b, []byte(m.Name))
		b = appendBytes(b, m.Value)
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// DecodeCommand parses log bytes written by EncodeCommand. Anything else,
// including a type or version this build does not know, is an error wrapping
// ErrCommand. It checks structure only; storage validates the change itself.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrCommand, len(b))
	}
	typ, version := CommandType(b[0]), b[1]
	switch {
	case typ == CommandChange && (version == 1 || version == changeVersion):
	case typ == CommandNodeReport && version == reportVersion:
	case typ != CommandChange && typ != CommandNodeReport:
		return Command{}, fmt.Errorf("%w: unknown type %d", ErrCommand, typ)
	default:
		return Command{}, fmt.Errorf("%w: unknown version %d of type %d", ErrCommand, version, typ)
	}
	d := decoder{b: b[2:], version: version}
	c := Command{Type: typ}
	if typ == CommandChange {
		c.Change = d.change()
	} else {
		c.Report = SealedReport{NodeID: string(d.bytes()), Value: d.bytes()}
		if d.err == nil && c.Report.NodeID == "" {
			d.fail("a node report without a node id")
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Command{}, d.err
	}
	return c, nil
}

// decoder reads a change body; the first error sticks and stops it.
type decoder struct {
	b       []byte
	version byte // of the change body
	err     error
}

// minItemSize is the fewest bytes a condition or mutation takes in any
// version, which bounds a count before anything is allocated for it.
const minItemSize = 4

func (d *decoder) change() kv.Change {
	var ch kv.Change
	if n := d.count(); n > 0 {
		ch.Require = make([]kv.Condition, n)
		for i := range ch.Require {
			ch.Require[i] = kv.Condition{
				Kind:     kv.ConditionKind(d.byte()),
				Bucket:   string(d.bytes()),
				Name:     string(d.bytes()),
				Revision: d.uvarint(),
			}
			if d.version >= 2 {
				ch.Require[i].Code = string(d.bytes())
			}
		}
	}
	if n := d.count(); n > 0 {
		ch.Apply = make([]kv.Mutation, n)
		for i := range ch.Apply {
			ch.Apply[i] = kv.Mutation{
				Kind:   kv.MutationKind(d.byte()),
				Bucket: string(d.bytes()),
				Name:   string(d.bytes()),
				Value:  d.bytes(),
			}
		}
	}
	return ch
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCommand}, args...)...)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minItemSize) {
		d.fail("count %d exceeds the body", n)
		return 0
	}
	return int(n)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a copy, so that the command does not alias the log buffer;
// nil for length 0.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds the body", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	v := make([]byte, n)
	copy(v, d.b)
	d.b = d.b[n:]
	return v
}
