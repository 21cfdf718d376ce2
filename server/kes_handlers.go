package server

import (
	"net/http"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// The KES-compatible routes act in the caller's own enclave and answer
// errors with KES's statuses and messages.

// ownEnclave is the enclave of the caller: its own, "default" for cluster
// admins.
func ownEnclave(r *http.Request) string {
	if e := callerOf(r.Context()).Enclave; e != "" {
		return e
	}
	return kms.DefaultEnclave
}

func (h *handler) kesCreateKey(w http.ResponseWriter, r *http.Request) error {
	_, err := h.svc.CreateKey(r.Context(), callerOf(r.Context()), ownEnclave(r), param(r, "name"), kms.AES256)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) kesImportKey(w http.ResponseWriter, r *http.Request) error {
	var req api.ImportKeyRequest
	defer func() { clear(req.Key) }()
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	alg, err := kms.ParseAlgorithm(req.Cipher)
	if err != nil {
		return err
	}
	if _, err := h.svc.ImportKey(r.Context(), callerOf(r.Context()), ownEnclave(r), param(r, "name"), alg, req.Key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) kesDescribeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.svc.DescribeKey(r.Context(), callerOf(r.Context()), ownEnclave(r), param(r, "name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, kesKeyInfo(k))
	return nil
}

func (h *handler) kesListKeys(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r, param(r, "prefix"))
	if err != nil {
		return err
	}
	page, err := h.svc.ListKeys(r.Context(), callerOf(r.Context()), ownEnclave(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse(page))
	return nil
}

func (h *handler) kesDeleteKey(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteKey(r.Context(), callerOf(r.Context()), ownEnclave(r), param(r, "name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) kesGenerateKey(w http.ResponseWriter, r *http.Request) error {
	return h.generate(w, r, ownEnclave(r))
}

func (h *handler) kesEncrypt(w http.ResponseWriter, r *http.Request) error {
	return h.encryptIn(w, r, ownEnclave(r))
}

func (h *handler) kesDecrypt(w http.ResponseWriter, r *http.Request) error {
	return h.decryptIn(w, r, ownEnclave(r))
}

func (h *handler) kesHMAC(w http.ResponseWriter, r *http.Request) error {
	return h.hmacIn(w, r, ownEnclave(r))
}

// The cryptographic operations are the same on both kinds of route; only
// the enclave differs.

func (h *handler) generate(w http.ResponseWriter, r *http.Request, enclave string) error {
	var req api.GenerateKeyRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	plaintext, ciphertext, err := h.svc.GenerateKey(r.Context(), callerOf(r.Context()), enclave, param(r, "name"), req.Context, req.Length)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	writeBytesJSON(w, generateKeyFields, plaintext, ciphertext) // api.GenerateKeyResponse
	return nil
}

func (h *handler) encryptIn(w http.ResponseWriter, r *http.Request, enclave string) error {
	var req api.EncryptKeyRequest
	defer func() { clear(req.Plaintext) }()
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	ciphertext, err := h.svc.Encrypt(r.Context(), callerOf(r.Context()), enclave, param(r, "name"), req.Plaintext, req.Context)
	if err != nil {
		return err
	}
	writeBytesJSON(w, ciphertextField, ciphertext) // api.EncryptKeyResponse
	return nil
}

func (h *handler) decryptIn(w http.ResponseWriter, r *http.Request, enclave string) error {
	var req api.DecryptKeyRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	plaintext, err := h.svc.Decrypt(r.Context(), callerOf(r.Context()), enclave, param(r, "name"), req.Ciphertext, req.Context)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	writeBytesJSON(w, plaintextField, plaintext) // api.DecryptKeyResponse
	return nil
}

func (h *handler) hmacIn(w http.ResponseWriter, r *http.Request, enclave string) error {
	var req api.HMACRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	sum, err := h.svc.HMAC(r.Context(), callerOf(r.Context()), enclave, param(r, "name"), req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.HMACResponse{HMAC: sum})
	return nil
}
