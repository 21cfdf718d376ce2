package storage

import (
	"errors"
	"fmt"
	"time"
)

// VerifySealed reports whether sealed, a value sealed for bucket/name,
// opens under rootKey. If it does not, the error wraps ErrWrongRootKey: a
// value carried by the raft log fails to open only under another key (or
// if the log is damaged, which the log's own checks would have found).
func VerifySealed(rootKey []byte, bucket, name string, sealed []byte) error {
	s, _, err := newSealer(rootKey)
	if err != nil {
		return err
	}
	plaintext, err := s.open(bucket, name, sealed)
	clear(plaintext)
	if err != nil {
		return fmt.Errorf("%w: a sealed value of %s/%s does not open under it", ErrWrongRootKey, bucket, name)
	}
	return nil
}

// VerifyFile reports whether the state file at path (a raft snapshot, a
// backup) was written under rootKey, opening it read-only: an error wraps
// ErrWrongRootKey if not, ErrSchema if it is no state file.
func VerifyFile(rootKey []byte, path string) error {
	s, check, err := newSealer(rootKey)
	if err != nil {
		return err
	}
	db := &DB{path: path, lockTimeout: 5 * time.Second, sealer: s, check: check}
	if err := db.verifyFile(path, false); err != nil {
		if errors.Is(err, ErrWrongRootKey) {
			return fmt.Errorf("%w: %s", ErrWrongRootKey, path)
		}
		return err
	}
	return nil
}
