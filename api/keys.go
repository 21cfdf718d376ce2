package api

import (
	"context"
	"net/http"
	"net/url"
)

// The methods in this file use the KES-compatible routes: they act in the
// caller's own enclave and the server answers errors exactly as KES does.

// Version returns the server's version. It needs no client certificate.
func (c *Client) Version(ctx context.Context) (*VersionResponse, error) {
	var v VersionResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/version"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Status returns the status of the server that answers.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var v StatusResponse
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/status"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Ready returns nil if a server is ready to serve requests. Otherwise it
// returns an *Error with status 503 that says why, or the transport error.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/v1/ready"}, nil)
}

// Live returns nil if a server is alive. It needs no client certificate.
func (c *Client) Live(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/v1/health/live"}, nil)
}

// DescribeSelf returns the caller's identity as the server knows it, with
// the rules of its policy. If the identity is not known, it returns
// ErrNotAllowed.
func (c *Client) DescribeSelf(ctx context.Context) (*SelfResponse, error) {
	var v SelfResponse
	if err := c.do(ctx, getState("/v1/identity/self/describe"), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// CreateKey creates a new AES-256 key. If a key of that name exists, it
// returns ErrKeyExists.
func (c *Client) CreateKey(ctx context.Context, name string) error {
	return c.do(ctx, request{write: true, method: http.MethodPut, path: "/v1/key/create/" + url.PathEscape(name)}, nil)
}

// ImportKey creates a key from the given key material. If a key of that
// name exists, it returns ErrKeyExists.
func (c *Client) ImportKey(ctx context.Context, name string, req *ImportKeyRequest) error {
	body, err := marshal(req)
	if err != nil {
		return err
	}
	return c.do(ctx, request{write: true, method: http.MethodPut, path: "/v1/key/import/" + url.PathEscape(name), body: body}, nil)
}

// DescribeKey returns the name, algorithm and creation of the newest version
// of a key. If no key of that name exists, it returns ErrKeyNotFound.
func (c *Client) DescribeKey(ctx context.Context, name string) (*KeyInfo, error) {
	var v KeyInfo
	if err := c.do(ctx, getState("/v1/key/describe/"+url.PathEscape(name)), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ListKeys returns up to limit names of keys that start with prefix, in
// ascending order, starting at continueAt. An empty prefix lists all keys;
// a limit of 0 leaves the page size to the server. If the answer's
// ContinueAt is not empty, pass it to get the next page.
func (c *Client) ListKeys(ctx context.Context, prefix, continueAt string, limit int) (*ListResponse, error) {
	pattern := "*" // all keys; unescaped, as KES clients send it
	if prefix != "" {
		pattern = url.PathEscape(prefix)
	}
	path := "/v1/key/list/" + pattern + listQuery("", continueAt, limit)
	var v ListResponse
	if err := c.do(ctx, getState(path), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DeleteKey deletes a key with all its versions. If no key of that name
// exists, it returns ErrKeyNotFound.
func (c *Client) DeleteKey(ctx context.Context, name string) error {
	return c.do(ctx, request{write: true, method: http.MethodDelete, path: "/v1/key/delete/" + url.PathEscape(name)}, nil)
}

// GenerateKey returns a new 32-byte data key, in plaintext and encrypted
// under the named key with the given context (associated data, may be nil).
// If no key of that name exists, it returns ErrKeyNotFound.
func (c *Client) GenerateKey(ctx context.Context, name string, context []byte) (*GenerateKeyResponse, error) {
	return generateKey(ctx, c, "/v1/key/generate/"+url.PathEscape(name), context, 0)
}

// Encrypt encrypts plaintext under the named key, bound to context (may be
// nil). If no key of that name exists, it returns ErrKeyNotFound.
func (c *Client) Encrypt(ctx context.Context, name string, plaintext, context []byte) ([]byte, error) {
	return encrypt(ctx, c, "/v1/key/encrypt/"+url.PathEscape(name), plaintext, context)
}

// Decrypt decrypts a ciphertext of the named key that was bound to context.
// If the ciphertext is not authentic (wrong key, wrong context, tampered),
// it returns ErrDecrypt; if no key of that name exists, ErrKeyNotFound.
func (c *Client) Decrypt(ctx context.Context, name string, ciphertext, context []byte) ([]byte, error) {
	return decrypt(ctx, c, "/v1/key/decrypt/"+url.PathEscape(name), ciphertext, context)
}

// HMAC returns the HMAC-SHA256 of message under a key derived from the named
// key. If no key of that name exists, it returns ErrKeyNotFound.
func (c *Client) HMAC(ctx context.Context, name string, message []byte) ([]byte, error) {
	return hmac(ctx, c, "/v1/key/hmac/"+url.PathEscape(name), message)
}

// The cryptographic operations share their bodies between the KES and the
// native routes.

func generateKey(ctx context.Context, c *Client, path string, context []byte, length int) (*GenerateKeyResponse, error) {
	body, err := marshal(&GenerateKeyRequest{Context: context, Length: length})
	if err != nil {
		return nil, err
	}
	var v GenerateKeyResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func encrypt(ctx context.Context, c *Client, path string, plaintext, context []byte) ([]byte, error) {
	body, err := marshal(&EncryptKeyRequest{Plaintext: plaintext, Context: context})
	if err != nil {
		return nil, err
	}
	var v EncryptKeyResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return v.Ciphertext, nil
}

func decrypt(ctx context.Context, c *Client, path string, ciphertext, context []byte) ([]byte, error) {
	body, err := marshal(&DecryptKeyRequest{Ciphertext: ciphertext, Context: context})
	if err != nil {
		return nil, err
	}
	var v DecryptKeyResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return v.Plaintext, nil
}

func hmac(ctx context.Context, c *Client, path string, message []byte) ([]byte, error) {
	body, err := marshal(&HMACRequest{Message: message})
	if err != nil {
		return nil, err
	}
	var v HMACResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return v.HMAC, nil
}
