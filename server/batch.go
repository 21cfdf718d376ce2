package server

import (
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// Batches and rewrap. A batch holds up to kms.MaxBatchItems key
// operations; each is authorised and answered on its own, in order, with
// the status and message its single request would have had. The batch
// routes take bodies up to api.MaxBatchBody (limitBody), all others 1 MiB.
//
// The audit trail gets one record for the batch, with the number of items
// per action, and one more per denied item.

// batchPath is the batch route in the caller's own enclave.
const batchPath = "/v1/batch"

var errBatchTooLarge = &httpError{http.StatusRequestEntityTooLarge, "batch body too large: at most 8 MiB"}

// isBatchPath reports whether path is a batch route: /v1/batch or
// /v1/enclaves/{enclave}/batch. limitBody runs before routing.
func isBatchPath(path string) bool {
	if path == batchPath {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/v1/enclaves/")
	if !ok {
		return false
	}
	enclave, tail, ok := strings.Cut(rest, "/")
	return ok && enclave != "" && tail == "batch"
}

func init() {
	// The batch routes' audit action (audit_requests.go).
	fixedActions[batchPath] = "key:batch"
	fixedActions["/v1/enclaves/{enclave}/batch"] = "key:batch"
}

// batchOps maps the operations of batch items to their actions.
var batchOps = map[string]kms.Action{
	api.BatchGenerate: kms.ActionKeyGenerate,
	api.BatchEncrypt:  kms.ActionKeyEncrypt,
	api.BatchDecrypt:  kms.ActionKeyDecrypt,
	api.BatchHMAC:     kms.ActionKeyHMAC,
	api.BatchRewrap:   kms.ActionKeyRewrap,
}

func (h *handler) batch(w http.ResponseWriter, r *http.Request) error {
	return h.batchIn(w, r, enclaveOf(r))
}

func (h *handler) ownBatch(w http.ResponseWriter, r *http.Request) error {
	return h.batchIn(w, r, ownEnclave(r))
}

// batchSlots is how many batches a node decodes and runs at once: twice
// its CPUs, at least 4. A batch is CPU work throughout, so more at once
// would not finish them sooner, but each one in progress holds its decoded
// items, its results and its key rings: 64 batches of 1,000 distinct keys
// at once took a node with 100,000 keys past 300 MiB. The others wait,
// body not decoded, up to the request timeout, and are then answered 503
// "server overloaded, retry later" with Retry-After.
func batchSlots() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

func (h *handler) batchIn(w http.ResponseWriter, r *http.Request, enclave string) error {
	if h.batchSlots != nil {
		select {
		case h.batchSlots <- struct{}{}:
			defer func() { <-h.batchSlots }()
		case <-r.Context().Done():
			return errOverloaded
		}
	}
	var req api.BatchRequest
	defer func() {
		for _, it := range req.Items {
			clear(it.Plaintext)
		}
	}()
	if err := decodeJSON(r, &req, false); err != nil {
		if err == errBodyTooLarge {
			return errBatchTooLarge
		}
		return err
	}
	if len(req.Items) == 0 {
		return kms.Invalidf("empty batch: want 1 to %d items", kms.MaxBatchItems)
	}
	if len(req.Items) > kms.MaxBatchItems {
		return kms.Invalidf("too many items in the batch: %d, at most %d", len(req.Items), kms.MaxBatchItems)
	}
	items := make([]kms.BatchItem, len(req.Items))
	badOp := map[int]error{}
	for i, it := range req.Items {
		a, ok := batchOps[it.Op]
		if !ok {
			// kms answers an empty action Invalid; the message is ours.
			badOp[i] = kms.Invalidf("invalid op %q: use generate, encrypt, decrypt, hmac or rewrap", truncateOp(it.Op))
		}
		items[i] = kms.BatchItem{
			Action: a, Name: it.Name, Plaintext: it.Plaintext, Ciphertext: it.Ciphertext,
			Context: it.Context, Message: it.Message, Length: it.Length,
		}
	}
	caller := callerOf(r.Context())
	res, err := h.svc.Batch(r.Context(), caller, enclave, items)
	if err != nil {
		return err
	}
	out := api.BatchResponse{Items: make([]api.BatchResult, len(res))}
	defer func() {
		for _, x := range out.Items {
			clear(x.Plaintext)
		}
	}()
	counts := make(map[string]int, len(batchOps))
	for i, x := range res {
		if err, ok := badOp[i]; ok {
			x.Err = err
		}
		if items[i].Action != "" {
			counts[string(items[i].Action)]++
		}
		if x.Err != nil {
			status, msg := statusOf(x.Err, true)
			out.Items[i] = api.BatchResult{Status: status, Message: msg}
			if status == http.StatusForbidden {
				h.auditDeniedItem(r, enclave, string(items[i].Action), items[i].Name)
			}
			continue
		}
		out.Items[i] = api.BatchResult{Status: http.StatusOK, Plaintext: x.Plaintext, Ciphertext: x.Ciphertext, HMAC: x.HMAC}
	}
	info(r.Context()).batch = counts
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditDeniedItem writes the audit record of a denied batch item and logs
// the denial, as for a denied request.
func (h *handler) auditDeniedItem(r *http.Request, enclave, action, name string) {
	ri := info(r.Context())
	rec := api.AuditRecord{
		Time: time.Now(), RequestID: ri.id, Identity: string(ri.identity), Enclave: enclave,
		Action: action, Object: name, Method: r.Method, Path: r.URL.EscapedPath(),
		Status: http.StatusForbidden, Remote: r.RemoteAddr,
	}
	h.denied(r, rec, false)
	if h.audit != nil {
		h.audit.Record(rec)
	}
}

func (h *handler) rewrap(w http.ResponseWriter, r *http.Request) error {
	return h.rewrapIn(w, r, enclaveOf(r))
}

func (h *handler) kesRewrap(w http.ResponseWriter, r *http.Request) error {
	return h.rewrapIn(w, r, ownEnclave(r))
}

func (h *handler) rewrapIn(w http.ResponseWriter, r *http.Request, enclave string) error {
	var req api.RewrapRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	ciphertext, err := h.svc.Rewrap(r.Context(), callerOf(r.Context()), enclave, param(r, "name"), req.Ciphertext, req.Context)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RewrapResponse{Ciphertext: ciphertext})
	return nil
}

func truncateOp(op string) string {
	if len(op) > 20 {
		return op[:20] + "..."
	}
	return op
}
