package kms

import (
	"encoding/json"
	"fmt"
	"time"
)

// keyRing is the stored value of a key: all its versions, oldest first. It
// holds key material, so it is wiped when done with.
type keyRing struct {
	Versions []keyVersion `json:"versions"`
	// Next is the number the next rotation gets. Versions are never
	// reused, even when the newest one was deleted, so an old ciphertext
	// never meets a different key of the same version.
	Next int `json:"next"`
}

// keyVersion is one version of a key with its material.
type keyVersion struct {
	Version   int       `json:"version"`
	Algorithm Algorithm `json:"algorithm"`
	Key       []byte    `json:"key"` // KeySize bytes
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Identity  `json:"created_by,omitempty"`
}

func decodeKeyRing(b []byte) (*keyRing, error) {
	r := new(keyRing)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("decoding key ring: %w", err)
	}
	if len(r.Versions) == 0 {
		return nil, fmt.Errorf("decoding key ring: no versions")
	}
	for _, v := range r.Versions {
		if len(v.Key) != KeySize {
			r.wipe()
			return nil, fmt.Errorf("decoding key ring: version %d: key of %d bytes", v.Version, len(v.Key))
		}
		if _, ok := algorithmIDs[v.Algorithm]; !ok {
			r.wipe()
			return nil, fmt.Errorf("decoding key ring: version %d: unknown algorithm %q", v.Version, v.Algorithm)
		}
	}
	return r, nil
}

// newest returns the version that encrypts.
func (r *keyRing) newest() keyVersion { return r.Versions[len(r.Versions)-1] }

// version returns version n, if the ring still has it.
func (r *keyRing) version(n int) (keyVersion, bool) {
	for _, v := range r.Versions {
		if v.Version == n {
			return v, true
		}
	}
	return keyVersion{}, false
}

// wipe zeroes the key material of every version.
func (r *keyRing) wipe() {
	if r == nil {
		return
	}
	for _, v := range r.Versions {
		clear(v.Key)
	}
}

// info describes the ring as the key name.
func (r *keyRing) info(name string) KeyInfo {
	n := r.newest()
	ki := KeyInfo{
		Name:      name,
		Algorithm: n.Algorithm,
		CreatedAt: n.CreatedAt,
		CreatedBy: n.CreatedBy,
		Version:   n.Version,
		Versions:  make([]KeyVersion, len(r.Versions)),
	}
	for i, v := range r.Versions {
		ki.Versions[i] = KeyVersion{Version: v.Version, Algorithm: v.Algorithm, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy}
	}
	return ki
}
