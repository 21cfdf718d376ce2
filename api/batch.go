package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// MaxBatchItems is the most items one batch may hold.
const MaxBatchItems = 1000

// MaxBatchBody is the largest body of a batch request, in bytes; other
// requests may have at most 1 MiB.
const MaxBatchBody = 8 << 20

// The operations of batch items: each needs the key action of the same
// name ("key:generate", ...) on its key.
const (
	BatchGenerate = "generate"
	BatchEncrypt  = "encrypt"
	BatchDecrypt  = "decrypt"
	BatchHMAC     = "hmac"
	BatchRewrap   = "rewrap"
)

// BatchItem is one operation of a batch. Op is one of BatchGenerate,
// BatchEncrypt, BatchDecrypt, BatchHMAC and BatchRewrap; it uses the
// fields of the single request of that operation and no others.
type BatchItem struct {
	Op         string `json:"op"`
	Name       string `json:"name"`                 // the key
	Plaintext  []byte `json:"plaintext,omitempty"`  // encrypt
	Ciphertext []byte `json:"ciphertext,omitempty"` // decrypt, rewrap
	Context    []byte `json:"context,omitempty"`    // generate, encrypt, decrypt, rewrap
	Message    []byte `json:"message,omitempty"`    // hmac
	Length     int    `json:"length,omitempty"`     // generate: 16 to 1024 bytes, 0 for 32
}

// BatchRequest is the body of POST /v1/batch and
// POST /v1/enclaves/{enclave}/batch.
type BatchRequest struct {
	Items []BatchItem `json:"items"`
}

// BatchResult is the answer to one item: Status 200 and the result of the
// operation, or the status and message the single request would have
// answered.
type BatchResult struct {
	Status     int    `json:"status"`
	Message    string `json:"message,omitempty"`
	Plaintext  []byte `json:"plaintext,omitempty"`  // generate, decrypt
	Ciphertext []byte `json:"ciphertext,omitempty"` // generate, encrypt, rewrap
	HMAC       []byte `json:"hmac,omitempty"`       // hmac
}

// Err returns nil for a successful item, else its error as an *Error,
// which errors.Is matches against ErrDecrypt, ErrNotAllowed and the
// others.
func (r *BatchResult) Err() error {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	return &Error{Status: r.Status, Message: r.Message}
}

// BatchResponse is the answer of a batch: one result per item, in order.
type BatchResponse struct {
	Items []BatchResult `json:"items"`
}

// RewrapRequest is the body of the rewrap routes.
type RewrapRequest struct {
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context,omitempty"`
}

// RewrapResponse carries the ciphertext of the same plaintext under the
// key's newest version.
type RewrapResponse struct {
	Ciphertext []byte `json:"ciphertext"`
}

// Batch sends up to MaxBatchItems key operations in one request, in the
// caller's own enclave, and returns one result per item, in order. An item
// that fails (not allowed, no such key, not authentic) fails alone: see
// BatchResult.Err. The error is for the batch as a whole: too many items,
// a body over MaxBatchBody, or the transport.
func (c *Client) Batch(ctx context.Context, items []BatchItem) ([]BatchResult, error) {
	return batch(ctx, c, "/v1/batch", items)
}

// Batch is Client.Batch in this enclave.
func (e *Enclave) Batch(ctx context.Context, items []BatchItem) ([]BatchResult, error) {
	return batch(ctx, e.c, e.path+"/batch", items)
}

// Rewrap turns a ciphertext of the named key, bound to context, into a
// ciphertext of the same plaintext under the key's newest version, bound to
// the same context; the plaintext does not leave the server. It needs the
// key:rewrap action. A ciphertext that is not authentic is ErrDecrypt.
func (c *Client) Rewrap(ctx context.Context, name string, ciphertext, context []byte) ([]byte, error) {
	return rewrap(ctx, c, "/v1/key/rewrap/"+url.PathEscape(name), ciphertext, context)
}

// Rewrap is Client.Rewrap in this enclave.
func (e *Enclave) Rewrap(ctx context.Context, name string, ciphertext, context []byte) ([]byte, error) {
	return rewrap(ctx, e.c, e.keyPath(name)+"/rewrap", ciphertext, context)
}

func batch(ctx context.Context, c *Client, path string, items []BatchItem) ([]BatchResult, error) {
	if len(items) > MaxBatchItems {
		return nil, fmt.Errorf("api: %d batch items, at most %d", len(items), MaxBatchItems)
	}
	body, err := marshal(&BatchRequest{Items: items})
	if err != nil {
		return nil, err
	}
	if len(body) > MaxBatchBody {
		clear(body)
		return nil, fmt.Errorf("api: batch body of %d bytes, at most %d", len(body), MaxBatchBody)
	}
	var v BatchResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	if len(v.Items) != len(items) {
		return nil, fmt.Errorf("api: the server answered %d results for %d batch items", len(v.Items), len(items))
	}
	return v.Items, nil
}

func rewrap(ctx context.Context, c *Client, path string, ciphertext, context []byte) ([]byte, error) {
	body, err := marshal(&RewrapRequest{Ciphertext: ciphertext, Context: context})
	if err != nil {
		return nil, err
	}
	var v RewrapResponse
	if err := c.do(ctx, request{method: http.MethodPut, path: path, body: body}, &v); err != nil {
		return nil, err
	}
	return v.Ciphertext, nil
}
