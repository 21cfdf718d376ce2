package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// CreateEnclave creates an enclave: a namespace of keys, identities and
// policies. Only a cluster admin may. If an enclave of that name exists, it
// returns ErrEnclaveExists.
func (c *Client) CreateEnclave(ctx context.Context, name string) (*EnclaveInfo, error) {
	var v EnclaveInfo
	if err := c.do(ctx, request{write: true, method: http.MethodPut, path: enclavePath(name)}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DescribeEnclave returns an enclave's metadata. If no enclave of that name
// exists, it returns ErrEnclaveNotFound.
func (c *Client) DescribeEnclave(ctx context.Context, name string) (*EnclaveInfo, error) {
	var v EnclaveInfo
	if err := c.do(ctx, getState(enclavePath(name)), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ListEnclaves returns up to limit names of enclaves that start with prefix,
// in ascending order, starting at continueAt. If the answer's ContinueAt is
// not empty, pass it to get the next page.
func (c *Client) ListEnclaves(ctx context.Context, prefix, continueAt string, limit int) (*ListResponse, error) {
	return list(ctx, c, "/v1/enclaves", prefix, continueAt, limit)
}

// DeleteEnclave deletes an enclave with all its keys, identities and
// policies. If no enclave of that name exists, it returns ErrEnclaveNotFound.
func (c *Client) DeleteEnclave(ctx context.Context, name string) error {
	return c.do(ctx, request{write: true, method: http.MethodDelete, path: enclavePath(name)}, nil)
}

// Enclave returns a handle for the native routes of the named enclave. It
// does not check that the enclave exists: its methods return
// ErrEnclaveNotFound if it does not.
func (c *Client) Enclave(name string) *Enclave {
	return &Enclave{c: c, name: name, path: enclavePath(name)}
}

// Enclave acts in one enclave with the native routes, which answer
// conflicts with 409 rather than KES's 400 (errors.Is works the same).
// An Enclave is safe for concurrent use.
type Enclave struct {
	c    *Client
	name string
	path string // /v1/enclaves/{name}, escaped
}

// Name returns the enclave's name.
func (e *Enclave) Name() string { return e.name }

func enclavePath(name string) string { return "/v1/enclaves/" + url.PathEscape(name) }

func (e *Enclave) keyPath(name string) string { return e.path + "/keys/" + url.PathEscape(name) }

// CreateKey creates a new key with the algorithm of req (nil or empty:
// AES256) and returns it. If a key of that name exists, it returns
// ErrKeyExists.
func (e *Enclave) CreateKey(ctx context.Context, name string, req *CreateKeyRequest) (*KeyInfo, error) {
	r := request{write: true, method: http.MethodPut, path: e.keyPath(name)}
	if req != nil {
		body, err := marshal(req)
		if err != nil {
			return nil, err
		}
		r.body = body
	}
	return keyInfo(ctx, e.c, r)
}

// ImportKey creates a key from the given key material and returns it. If a
// key of that name exists, it returns ErrKeyExists.
func (e *Enclave) ImportKey(ctx context.Context, name string, req *ImportKeyRequest) (*KeyInfo, error) {
	body, err := marshal(req)
	if err != nil {
		return nil, err
	}
	return keyInfo(ctx, e.c, request{write: true, method: http.MethodPut, path: e.keyPath(name) + "/import", body: body})
}

// DescribeKey returns a key with all its versions, oldest first. If no key
// of that name exists, it returns ErrKeyNotFound.
func (e *Enclave) DescribeKey(ctx context.Context, name string) (*KeyInfo, error) {
	return keyInfo(ctx, e.c, getState(e.keyPath(name)))
}

// ListKeys returns up to limit names of keys that start with prefix, in
// ascending order, starting at continueAt. If the answer's ContinueAt is not
// empty, pass it to get the next page.
func (e *Enclave) ListKeys(ctx context.Context, prefix, continueAt string, limit int) (*ListResponse, error) {
	return list(ctx, e.c, e.path+"/keys", prefix, continueAt, limit)
}

// DeleteKey deletes a key with all its versions. If no key of that name
// exists, it returns ErrKeyNotFound.
func (e *Enclave) DeleteKey(ctx context.Context, name string) error {
	return e.c.do(ctx, request{write: true, method: http.MethodDelete, path: e.keyPath(name)}, nil)
}

// RotateKey adds a new version to a key, which encrypts from then on; the
// older versions still decrypt. It returns the new version number. If no
// key of that name exists, it returns ErrKeyNotFound. As any write, a
// rotation is sent again only if it certainly was not applied: once it
// has reached an endpoint, a dropped connection or a timeout returns an
// error wrapping ErrOutcomeUnknown, and a 503 other than "no leader" or
// one with Retry-After is returned as is, because the key may have been
// rotated all the same; describe the key to find out.
func (e *Enclave) RotateKey(ctx context.Context, name string) (*RotateKeyResponse, error) {
	var v RotateKeyResponse
	if err := e.c.do(ctx, request{method: http.MethodPost, path: e.keyPath(name) + "/rotate", write: true}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DeleteKeyVersion deletes one version of a key; ciphertexts of that
// version can no longer be decrypted. If the key does not exist, it returns
// ErrKeyNotFound; if the version does not, ErrKeyVersionNotFound.
func (e *Enclave) DeleteKeyVersion(ctx context.Context, name string, version int) error {
	path := e.keyPath(name) + "/versions/" + strconv.Itoa(version)
	return e.c.do(ctx, request{write: true, method: http.MethodDelete, path: path}, nil)
}

// GenerateKey returns a new data key of length bytes (0: 32), in plaintext
// and encrypted under the named key with the given context (may be nil).
// If no key of that name exists, it returns ErrKeyNotFound.
func (e *Enclave) GenerateKey(ctx context.Context, name string, context []byte, length int) (*GenerateKeyResponse, error) {
	return generateKey(ctx, e.c, e.keyPath(name)+"/generate", context, length)
}

// Encrypt encrypts plaintext under the newest version of the named key,
// bound to context (may be nil). If no key of that name exists, it returns
// ErrKeyNotFound.
func (e *Enclave) Encrypt(ctx context.Context, name string, plaintext, context []byte) ([]byte, error) {
	return encrypt(ctx, e.c, e.keyPath(name)+"/encrypt", plaintext, context)
}

// Decrypt decrypts a ciphertext of the named key that was bound to context.
// If the ciphertext is not authentic (wrong key, wrong context, tampered,
// deleted version), it returns ErrDecrypt; if no key of that name exists,
// ErrKeyNotFound.
func (e *Enclave) Decrypt(ctx context.Context, name string, ciphertext, context []byte) ([]byte, error) {
	return decrypt(ctx, e.c, e.keyPath(name)+"/decrypt", ciphertext, context)
}

// HMAC returns the HMAC-SHA256 of message under a key derived from the named
// key. If no key of that name exists, it returns ErrKeyNotFound.
func (e *Enclave) HMAC(ctx context.Context, name string, message []byte) ([]byte, error) {
	return hmac(ctx, e.c, e.keyPath(name)+"/hmac", message)
}

func (e *Enclave) identityPath(identity string) string {
	return e.path + "/identities/" + url.PathEscape(identity)
}

// CreateIdentity lets an identity ("h1:…") into the enclave, as an admin or
// with a policy, and returns it. An enclave admin must send the key
// holder's consent in req.Proof (see NewIdentityProof); without one, or if
// the identity belongs to another enclave, it gets ErrNotAllowed, with an
// invalid one ErrInvalidProof. If the identity is already in this enclave
// (or, for a cluster admin, in any), it returns ErrIdentityExists; if the
// policy does not exist, ErrPolicyNotFound.
func (e *Enclave) CreateIdentity(ctx context.Context, identity string, req *CreateIdentityRequest) (*IdentityInfo, error) {
	if req == nil {
		req = &CreateIdentityRequest{}
	}
	body, err := marshal(req)
	if err != nil {
		return nil, err
	}
	return identityInfo(ctx, e.c, request{write: true, method: http.MethodPut, path: e.identityPath(identity), body: body})
}

// DescribeIdentity returns an identity of the enclave. If it is not known,
// it returns ErrIdentityNotFound.
func (e *Enclave) DescribeIdentity(ctx context.Context, identity string) (*IdentityInfo, error) {
	return identityInfo(ctx, e.c, getState(e.identityPath(identity)))
}

// ListIdentities returns up to limit identities of the enclave that start
// with prefix, in ascending order, starting at continueAt. If the answer's
// ContinueAt is not empty, pass it to get the next page.
func (e *Enclave) ListIdentities(ctx context.Context, prefix, continueAt string, limit int) (*ListResponse, error) {
	return list(ctx, e.c, e.path+"/identities", prefix, continueAt, limit)
}

// DeleteIdentity removes an identity from the enclave. If it is not known,
// it returns ErrIdentityNotFound.
func (e *Enclave) DeleteIdentity(ctx context.Context, identity string) error {
	return e.c.do(ctx, request{write: true, method: http.MethodDelete, path: e.identityPath(identity)}, nil)
}

func (e *Enclave) policyPath(name string) string {
	return e.path + "/policies/" + url.PathEscape(name)
}

// CreatePolicy stores a policy and returns it. If a policy of that name
// exists, it returns ErrPolicyExists unless replace is true, in which case
// the policy is replaced.
func (e *Enclave) CreatePolicy(ctx context.Context, name string, p *Policy, replace bool) (*PolicyInfo, error) {
	body, err := marshal(p)
	if err != nil {
		return nil, err
	}
	path := e.policyPath(name)
	if replace {
		path += "?replace=true"
	}
	var v PolicyInfo
	if err := e.c.do(ctx, request{write: true, method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DescribePolicy returns a policy of the enclave. If no policy of that name
// exists, it returns ErrPolicyNotFound.
func (e *Enclave) DescribePolicy(ctx context.Context, name string) (*PolicyInfo, error) {
	var v PolicyInfo
	if err := e.c.do(ctx, getState(e.policyPath(name)), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ListPolicies returns up to limit names of policies that start with prefix,
// in ascending order, starting at continueAt. If the answer's ContinueAt is
// not empty, pass it to get the next page.
func (e *Enclave) ListPolicies(ctx context.Context, prefix, continueAt string, limit int) (*ListResponse, error) {
	return list(ctx, e.c, e.path+"/policies", prefix, continueAt, limit)
}

// DeletePolicy deletes a policy. If no policy of that name exists, it
// returns ErrPolicyNotFound.
func (e *Enclave) DeletePolicy(ctx context.Context, name string) error {
	return e.c.do(ctx, request{write: true, method: http.MethodDelete, path: e.policyPath(name)}, nil)
}

func keyInfo(ctx context.Context, c *Client, r request) (*KeyInfo, error) {
	var v KeyInfo
	if err := c.do(ctx, r, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func identityInfo(ctx context.Context, c *Client, r request) (*IdentityInfo, error) {
	var v IdentityInfo
	if err := c.do(ctx, r, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func list(ctx context.Context, c *Client, path, prefix, continueAt string, limit int) (*ListResponse, error) {
	var v ListResponse
	if err := c.do(ctx, getState(path+listQuery(prefix, continueAt, limit)), &v); err != nil {
		return nil, err
	}
	return &v, nil
}
