package api

import "time"

// Byte fields are []byte and so travel as standard base64 JSON strings.

// ImportKeyRequest is the body of PUT /v1/key/import/{name} and of the
// native import route. Cipher is "AES256" or "ChaCha20"; Key is 32 bytes.
type ImportKeyRequest struct {
	Key    []byte `json:"key"`
	Cipher string `json:"cipher"`
}

// CreateKeyRequest is the optional body of the native create route.
// Algorithm is "AES256" (the default) or "ChaCha20".
type CreateKeyRequest struct {
	Algorithm string `json:"algorithm,omitempty"`
}

// KeyInfo describes a key. The KES route GET /v1/key/describe/{name}
// answers Name, Algorithm, CreatedAt and CreatedBy of the newest version;
// the native describe route also fills Version and Versions.
type KeyInfo struct {
	Name      string           `json:"name"`
	Algorithm string           `json:"algorithm"`
	CreatedAt time.Time        `json:"created_at"`
	CreatedBy string           `json:"created_by"`
	Version   int              `json:"version,omitempty"`  // newest version, the one that encrypts
	Versions  []KeyVersionInfo `json:"versions,omitempty"` // oldest first
}

// KeyVersionInfo describes one version of a key.
type KeyVersionInfo struct {
	Version   int       `json:"version"`
	Algorithm string    `json:"algorithm"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// ListResponse is a page of names. ContinueAt, when not empty, is the
// value to pass as ?continue= to get the next page.
type ListResponse struct {
	Names      []string `json:"names"`
	ContinueAt string   `json:"continue_at,omitempty"`
}

// RotateKeyResponse is the answer of the native rotate route.
type RotateKeyResponse struct {
	Version int `json:"version"`
}

// GenerateKeyRequest is the body of PUT /v1/key/generate/{name}. Length is
// the data key size in bytes (16–1024, default 32; a native extension).
type GenerateKeyRequest struct {
	Context []byte `json:"context,omitempty"`
	Length  int    `json:"length,omitempty"`
}

// GenerateKeyResponse carries a fresh data key in plaintext and encrypted
// under the named key.
type GenerateKeyResponse struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
}

// EncryptKeyRequest is the body of PUT /v1/key/encrypt/{name}.
type EncryptKeyRequest struct {
	Plaintext []byte `json:"plaintext"`
	Context   []byte `json:"context,omitempty"`
}

// EncryptKeyResponse is the answer of the encrypt routes.
type EncryptKeyResponse struct {
	Ciphertext []byte `json:"ciphertext"`
}

// DecryptKeyRequest is the body of PUT /v1/key/decrypt/{name}.
type DecryptKeyRequest struct {
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context,omitempty"`
}

// DecryptKeyResponse is the answer of the decrypt routes.
type DecryptKeyResponse struct {
	Plaintext []byte `json:"plaintext"`
}

// HMACRequest is the body of PUT /v1/key/hmac/{name}.
type HMACRequest struct {
	Message []byte `json:"message"`
}

// HMACResponse carries the HMAC-SHA256 of the message.
type HMACResponse struct {
	HMAC []byte `json:"hmac"`
}

// VersionResponse is the answer of GET /version.
type VersionResponse struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// ClusterID names the cluster of the node, as identity proofs do; ""
	// while the node does not know it yet. It is not a secret: a key
	// holder that is not let in yet reads it here to make a proof.
	ClusterID string `json:"cluster_id,omitempty"`
}

// StatusResponse is the answer of GET /v1/status. Its first fields are
// KES's, in KES's names and units, so KES clients (`kes status`, MinIO)
// read them; the rest are minkms's own.
type StatusResponse struct {
	Version    string `json:"version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	UpTime     uint64 `json:"uptime"`         // seconds, as KES
	CPUs       int    `json:"num_cpu"`        // logical CPUs of the host
	UsableCPUs int    `json:"num_cpu_used"`   // GOMAXPROCS
	HeapAlloc  uint64 `json:"mem_heap_used"`  // bytes allocated on the heap
	StackAlloc uint64 `json:"mem_stack_used"` // bytes of goroutine stacks

	NodeID string `json:"node_id,omitempty"`
	// Role is the node's raft role: "leader", "follower" or "candidate".
	Role string `json:"raft_role,omitempty"`
	// Leader reports whether this node is the leader; LeaderID names the
	// leader it knows ("" if none).
	Leader   bool   `json:"leader"`
	LeaderID string `json:"leader_id,omitempty"`
	// ClusterID names the cluster, as identity proofs do.
	ClusterID string `json:"cluster_id,omitempty"`
}

// Uptime returns UpTime as a time.Duration.
func (s *StatusResponse) Uptime() time.Duration { return time.Duration(s.UpTime) * time.Second }

// HealthResponse is the answer of the health routes.
type HealthResponse struct {
	Status string `json:"status"` // "ok" or the reason it is not
}

// Policy maps actions (key:create, key:encrypt, …) to name patterns. A
// pattern matches a name with * for any run of characters and ? for one
// character. Deny wins; nothing is allowed that no rule allows.
type Policy struct {
	Allow map[string][]string `json:"allow,omitempty"`
	Deny  map[string][]string `json:"deny,omitempty"`
}

// PolicyInfo describes a stored policy.
type PolicyInfo struct {
	Name      string    `json:"name"`
	Enclave   string    `json:"enclave"`
	Policy    Policy    `json:"policy"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// CreateIdentityRequest is the body of the native identity create route.
// An admin identity may do everything in its enclave; a user identity
// what its policy allows.
//
// Proof is the consent of the identity's key holder to be bound to this
// enclave of this cluster: a token made by NewIdentityProof (or "minkms
// identity proof") with the identity's private key. An enclave admin needs
// one; a cluster admin does not, but a proof that is sent is checked.
type CreateIdentityRequest struct {
	Admin  bool   `json:"admin,omitempty"`
	Policy string `json:"policy,omitempty"`
	Proof  string `json:"proof,omitempty"`
}

// IdentityInfo describes an identity.
type IdentityInfo struct {
	Identity     string    `json:"identity"`
	Enclave      string    `json:"enclave"`
	Admin        bool      `json:"admin"`
	ClusterAdmin bool      `json:"cluster_admin,omitempty"`
	Policy       string    `json:"policy,omitempty"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	CreatedBy    string    `json:"created_by,omitempty"`
}

// SelfResponse is the answer of GET /v1/identity/self/describe.
type SelfResponse struct {
	IdentityInfo
	PolicyRules *Policy `json:"policy_rules,omitempty"`
}

// EnclaveInfo describes an enclave.
type EnclaveInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Message string `json:"message"`
}
