package storage

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/minkms/minkms/storage/kv"
)

// SchemaVersion is the version of the state file layout this build writes
// and reads.
//
// Version 2 records the term of the last applied raft entry beside its
// index (meta "applied-term"), so that a node can tell at start whether its
// state and its raft log are of the same history. A version 1 file, which
// lacks it, is read and upgraded in place when it is opened for writing;
// its term reads as 0 (unknown) until the next entry is applied. An older
// build refuses a version 2 file instead of applying entries without
// recording their term.
const SchemaVersion = 2

// oldestSchema is the oldest layout this build reads.
const oldestSchema = 1

// The file layout: two top-level buckets. Data buckets live inside "data",
// keyed by their whole path, so that no data bucket can collide with meta and
// a bucket and everything below it are neighbours in key order.
var (
	metaBucket = []byte("meta")
	dataBucket = []byte("data")

	schemaKey  = []byte("schema")
	checkKey   = []byte("rootkey-check")
	appliedKey = []byte("applied")

	// appliedTermKey holds the term of the entry at the applied index.
	// States written before it existed lack it; they read as term 0.
	appliedTermKey = []byte("applied-term")
)

// initialMmapSize is the initial size of the memory mapping of the state file.
const initialMmapSize = 64 << 20

// revisionSize is the length of the revision prefix of every stored value.
const revisionSize = 8

// Options tune Open.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock that another
	// process holds. 0 means 5 seconds.
	LockTimeout time.Duration
}

// DB is the state file of one node. Reads are safe concurrently with each
// other and with Apply; Restore blocks both while it swaps the file.
type DB struct {
	path        string
	lockTimeout time.Duration
	sealer      *sealer
	check       []byte // root-key check value; not secret, but compared in constant time

	writes atomic.Uint64 // write transactions of ApplyBatch

	mu   sync.RWMutex // held for writing only while Restore or Close swap bolt
	bolt *bolt.DB     // nil once closed
}

// Open opens the state file at path, creating and initialising it if it does
// not exist. rootKey must be RootKeySize bytes (else the error wraps
// kv.ErrInvalid); DB keeps no copy of it. If the
// file was written under another root key, Open returns an error wrapping
// ErrWrongRootKey and leaves the file as it was; if it is not a state file of
// a supported schema, an error wrapping ErrSchema.
func Open(path string, rootKey []byte, opts Options) (*DB, error) {
	s, check, err := newSealer(rootKey)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	db := &DB{path: path, lockTimeout: opts.LockTimeout, sealer: s, check: check}
	if db.lockTimeout <= 0 {
		db.lockTimeout = 5 * time.Second
	}

	// An existing file is verified read-only first, so that a wrong root key
	// or a foreign file is refused before anything could be written to it.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if err := db.verifyFile(path, false); err != nil {
			return nil, fmt.Errorf("open state %s: %w", path, err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}

	b, err := db.openBolt(path, false)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := db.initialise(b); err != nil {
		b.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	db.bolt = b
	return db, nil
}

func (db *DB) openBolt(path string, readOnly bool) (*bolt.DB, error) {
	opts := &bolt.Options{Timeout: db.lockTimeout, ReadOnly: readOnly}
	if !readOnly {
		// A write that grows the file past the mapping has to remap it,
		// which waits for open read transactions, snapshots included. A
		// generous initial mapping (address space, not memory) makes that
		// rare.
		opts.InitialMmapSize = initialMmapSize
	}
	b, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrChecksum) {
			return nil, fmt.Errorf("%w: %w", ErrSchema, err)
		}
		return nil, err
	}
	return b, nil
}

// verifyFile opens path read-only and checks that it is a complete,
// initialised state file written under db's root key. deep also reads
// every bucket, key and value, for files that come from elsewhere (a
// snapshot the leader sends, a backup): in this goroutine, with faults and
// panics on damaged pages turned into errors. (bbolt's own Check would
// crash the node on some damage: it panics in a goroutine of its own; the
// offline `minkms admin check` runs it in a child process.)
func (db *DB) verifyFile(path string, deep bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := db.openBolt(path, true)
	if err != nil {
		return err
	}
	defer b.Close()
	return b.View(func(tx *bolt.Tx) error {
		// A truncated file would fault when the missing pages are mapped.
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: truncated file: %d of %d bytes", ErrSchema, fi.Size(), tx.Size())
		}
		ok, err := db.checkMeta(tx)
		if err == nil && !ok {
			err = fmt.Errorf("%w: no meta bucket", ErrSchema)
		}
		if err != nil || !deep {
			return err
		}
		if err := contained(path, func() error { return walk(tx) }); err != nil {
			return fmt.Errorf("%w: inconsistent file: %w", ErrSchema, err)
		}
		return nil
	})
}

// walk reads every bucket, key and value of tx.
func walk(tx *bolt.Tx) error {
	var visit func(b *bolt.Bucket) error
	visit = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				child := b.Bucket(k)
				if child == nil {
					return fmt.Errorf("key %q has no value and is no bucket", k)
				}
				return visit(child)
			}
			return nil
		})
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return visit(b) })
}

// checkMeta reports whether tx holds an initialised state, and an error if
// it does but not of this schema or root key.
func (db *DB) checkMeta(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket(metaBucket)
	if meta == nil {
		if tx.Bucket(dataBucket) != nil {
			return false, fmt.Errorf("%w: data without meta", ErrSchema)
		}
		return false, nil
	}
	v := meta.Get(schemaKey)
	if len(v) != 4 {
		return false, fmt.Errorf("%w: no schema version", ErrSchema)
	}
	if version := binary.BigEndian.Uint32(v); version < oldestSchema || version > SchemaVersion {
		return false, fmt.Errorf("%w: version %d, this build reads %d to %d", ErrSchema, version, oldestSchema, SchemaVersion)
	}
	if subtle.ConstantTimeCompare(meta.Get(checkKey), db.check) != 1 {
		return false, ErrWrongRootKey
	}
	if len(meta.Get(appliedKey)) != 8 || tx.Bucket(dataBucket) == nil {
		return false, fmt.Errorf("%w: incomplete meta", ErrSchema)
	}
	return true, nil
}

// initialise writes the meta of a fresh file, verifies an existing one and
// upgrades an existing one of an older schema. It writes nothing to a file
// that is initialised and current.
func (db *DB) initialise(b *bolt.DB) error {
	var (
		ok      bool
		version uint32
	)
	err := b.View(func(tx *bolt.Tx) error {
		var err error
		ok, err = db.checkMeta(tx)
		if ok {
			version = binary.BigEndian.Uint32(tx.Bucket(metaBucket).Get(schemaKey))
		}
		return err
	})
	if err != nil {
		return err
	}
	if ok && version < SchemaVersion {
		return b.Update(func(tx *bolt.Tx) error { return upgrade(tx.Bucket(metaBucket), version) })
	}
	if ok {
		return nil
	}
	return b.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(metaBucket)
		if err != nil {
			return fmt.Errorf("create meta: %w", err)
		}
		if _, err := tx.CreateBucket(dataBucket); err != nil {
			return fmt.Errorf("create data: %w", err)
		}
		var schema [4]byte
		binary.BigEndian.PutUint32(schema[:], SchemaVersion)
		if err := meta.Put(schemaKey, schema[:]); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		if err := meta.Put(checkKey, bytes.Clone(db.check)); err != nil {
			return fmt.Errorf("write root key check: %w", err)
		}
		if err := meta.Put(appliedKey, make([]byte, 8)); err != nil {
			return fmt.Errorf("write applied index: %w", err)
		}
		if err := meta.Put(appliedTermKey, make([]byte, 8)); err != nil {
			return fmt.Errorf("write applied term: %w", err)
		}
		return nil
	})
}

// upgrade brings the meta of a state file of schema version from up to
// SchemaVersion.
func upgrade(meta *bolt.Bucket, from uint32) error {
	if from < 2 && meta.Get(appliedTermKey) == nil {
		// The term of the last applied entry is not known: 0, which the
		// start-up check does not compare.
		if err := meta.Put(appliedTermKey, make([]byte, 8)); err != nil {
			return fmt.Errorf("upgrade the state from schema %d: %w", from, err)
		}
	}
	var schema [4]byte
	binary.BigEndian.PutUint32(schema[:], SchemaVersion)
	if err := meta.Put(schemaKey, schema[:]); err != nil {
		return fmt.Errorf("upgrade the state from schema %d: %w", from, err)
	}
	return nil
}

// Path returns the path of the state file.
func (db *DB) Path() string { return db.path }

// Seal seals plaintext for the entry name of bucket, so that it can be put
// there by Apply. The proposer seals every value before it enters the raft
// log. It returns an error wrapping kv.ErrInvalid for a malformed bucket or
// name.
func (db *DB) Seal(bucket, name string, plaintext []byte) ([]byte, error) {
	if err := kv.ValidEntry(bucket, name); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	sealed, err := db.sealer.seal(bucket, name, plaintext)
	if err != nil {
		return nil, fmt.Errorf("seal %s/%s: %w", bucket, name, err)
	}
	return sealed, nil
}

// Get returns the entry name of bucket with its value unsealed, and as its
// Index the applied index read in the same transaction. If there is no such
// entry it returns an error wrapping kv.ErrNotExist; if the stored value does
// not open, one wrapping ErrCorrupt.
func (db *DB) Get(bucket, name string) (kv.Entry, error) {
	var e kv.Entry
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(dataBucket).Bucket([]byte(bucket))
		if b == nil {
			return kv.ErrNotExist
		}
		v := b.Get([]byte(name))
		if v == nil {
			return kv.ErrNotExist
		}
		if len(v) < revisionSize {
			return ErrCorrupt
		}
		plaintext, err := db.sealer.open(bucket, name, v[revisionSize:])
		if err != nil {
			return err
		}
		e = kv.Entry{
			Value:    plaintext,
			Revision: binary.BigEndian.Uint64(v),
			Index:    binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(appliedKey)),
		}
		return nil
	})
	if err != nil {
		return kv.Entry{}, fmt.Errorf("get %s/%s: %w", bucket, name, err)
	}
	return e, nil
}

// List returns up to limit names of bucket, in ascending order, that start
// with prefix and sort strictly after the name after ("" for the start).
// limit <= 0 means no limit. A bucket that does not exist is empty.
func (db *DB) List(bucket, prefix, after string, limit int) ([]string, error) {
	var names []string
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(dataBucket).Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		start := prefix
		if after > start {
			start = after
		}
		c := b.Cursor()
		k, _ := c.Seek([]byte(start))
		if after != "" && k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			if limit > 0 && len(names) >= limit {
				break
			}
			names = append(names, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", bucket, err)
	}
	return names, nil
}

// AppliedIndex returns the index of the last change applied (or skipped as
// applied), 0 for a fresh state or a closed DB.
func (db *DB) AppliedIndex() uint64 {
	var index uint64
	db.view(func(tx *bolt.Tx) error {
		index = binary.BigEndian.Uint64(tx.Bucket(metaBucket).Get(appliedKey))
		return nil
	})
	return index
}

// Close closes the state file. It waits for open snapshots to be released.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.bolt == nil {
		return nil
	}
	err := db.bolt.Close()
	db.bolt = nil
	if err != nil {
		return fmt.Errorf("close state %s: %w", db.path, err)
	}
	return nil
}

func (db *DB) view(fn func(*bolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.contained(func() error { return db.bolt.View(fn) })
}
