package kms

import "time"

// The stored records other than key rings (see keyring.go). They are JSON
// and hold what the state does not already say by their bucket and name.

type enclaveRecord struct {
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Identity  `json:"created_by,omitempty"`
}

type identityRecord struct {
	Admin     bool      `json:"admin,omitempty"`
	Policy    string    `json:"policy,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Identity  `json:"created_by,omitempty"`
}

// indexRecord is the value of identities/<id>.
type indexRecord struct {
	Enclave string `json:"enclave"`
}

type policyRecord struct {
	Policy    Policy    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy Identity  `json:"created_by,omitempty"`
}
