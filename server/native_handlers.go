package server

import (
	"log/slog"
	"net/http"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// The native routes name the enclave in the path, answer conflicts with
// 409 and refuse unknown fields in request bodies.

func enclaveOf(r *http.Request) string { return param(r, "enclave") }

// Enclaves.

func (h *handler) listEnclaves(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r, "")
	if err != nil {
		return err
	}
	page, err := h.svc.ListEnclaves(r.Context(), callerOf(r.Context()), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse(page))
	return nil
}

func (h *handler) createEnclave(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.CreateEnclave(r.Context(), callerOf(r.Context()), enclaveOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, enclaveInfo(e))
	return nil
}

func (h *handler) describeEnclave(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.DescribeEnclave(r.Context(), callerOf(r.Context()), enclaveOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, enclaveInfo(e))
	return nil
}

func (h *handler) deleteEnclave(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteEnclave(r.Context(), callerOf(r.Context()), enclaveOf(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// Keys.

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r, "")
	if err != nil {
		return err
	}
	page, err := h.svc.ListKeys(r.Context(), callerOf(r.Context()), enclaveOf(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse(page))
	return nil
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateKeyRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	alg, err := kms.ParseAlgorithm(req.Algorithm)
	if err != nil {
		return err
	}
	k, err := h.svc.CreateKey(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"), alg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyInfo(k))
	return nil
}

func (h *handler) importKey(w http.ResponseWriter, r *http.Request) error {
	var req api.ImportKeyRequest
	defer func() { clear(req.Key) }()
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	alg, err := kms.ParseAlgorithm(req.Cipher)
	if err != nil {
		return err
	}
	k, err := h.svc.ImportKey(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"), alg, req.Key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyInfo(k))
	return nil
}

func (h *handler) describeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.svc.DescribeKey(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyInfo(k))
	return nil
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteKey(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) rotateKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.svc.RotateKey(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RotateKeyResponse{Version: k.Version})
	return nil
}

func (h *handler) deleteKeyVersion(w http.ResponseWriter, r *http.Request) error {
	version, err := parseVersion(param(r, "version"))
	if err != nil {
		return err
	}
	if err := h.svc.DeleteKeyVersion(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"), version); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) generateKey(w http.ResponseWriter, r *http.Request) error {
	return h.generate(w, r, enclaveOf(r))
}

func (h *handler) encrypt(w http.ResponseWriter, r *http.Request) error {
	return h.encryptIn(w, r, enclaveOf(r))
}

func (h *handler) decrypt(w http.ResponseWriter, r *http.Request) error {
	return h.decryptIn(w, r, enclaveOf(r))
}

func (h *handler) hmac(w http.ResponseWriter, r *http.Request) error {
	return h.hmacIn(w, r, enclaveOf(r))
}

// Identities.

func (h *handler) listIdentities(w http.ResponseWriter, r *http.Request) error {
	o, err := listIdentityOptions(r)
	if err != nil {
		return err
	}
	page, err := h.svc.ListIdentities(r.Context(), callerOf(r.Context()), enclaveOf(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse(page))
	return nil
}

// listIdentityOptions reads the list options of identities, whose names
// (h1:...) hold a colon that names may not.
func listIdentityOptions(r *http.Request) (kms.ListOptions, error) {
	q := r.URL.Query()
	prefix, cont := q.Get("prefix"), q.Get("continue")
	q.Del("prefix")
	q.Del("continue")
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	o, err := listOptions(r2, "")
	if err != nil {
		return o, err
	}
	if len(prefix) > 128 || len(cont) > 128 {
		return o, kms.Invalidf("invalid prefix or continue: too long")
	}
	o.Prefix, o.ContinueAt = prefix, cont
	return o, nil
}

func (h *handler) createIdentity(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateIdentityRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Policy != "" {
		if err := kms.ValidName(req.Policy); err != nil {
			return err
		}
	}
	id, err := kms.ParseIdentity(param(r, "identity"))
	if err != nil {
		return err
	}
	info, err := h.svc.CreateIdentity(r.Context(), callerOf(r.Context()), enclaveOf(r), id, req.Admin, req.Policy, req.Proof)
	if err != nil {
		if msg := kms.Message(err); msg != err.Error() && kms.ErrorCode(err) != kms.Internal {
			// The caller sees msg only; the reason is for the operator.
			h.log.DebugContext(r.Context(), "Identity not created",
				slog.String("reason", err.Error()),
				slog.String("request_id", requestID(r.Context())),
				slog.String("identity", string(id)),
				slog.String("enclave", enclaveOf(r)),
				slog.String("caller", string(callerOf(r.Context()).Identity)))
		}
		return err
	}
	writeJSON(w, http.StatusOK, identityInfo(info))
	return nil
}

func (h *handler) describeIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := kms.ParseIdentity(param(r, "identity"))
	if err != nil {
		return err
	}
	info, err := h.svc.DescribeIdentity(r.Context(), callerOf(r.Context()), enclaveOf(r), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, identityInfo(info))
	return nil
}

func (h *handler) deleteIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := kms.ParseIdentity(param(r, "identity"))
	if err != nil {
		return err
	}
	if err := h.svc.DeleteIdentity(r.Context(), callerOf(r.Context()), enclaveOf(r), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// Policies.

func (h *handler) listPolicies(w http.ResponseWriter, r *http.Request) error {
	o, err := listOptions(r, "")
	if err != nil {
		return err
	}
	page, err := h.svc.ListPolicies(r.Context(), callerOf(r.Context()), enclaveOf(r), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listResponse(page))
	return nil
}

// createPolicy stores a policy; ?replace=true replaces an existing one.
func (h *handler) createPolicy(w http.ResponseWriter, r *http.Request) error {
	replace := false
	switch v := r.URL.Query().Get("replace"); v {
	case "", "false":
	case "true":
		replace = true
	default:
		return kms.Invalidf("invalid replace %q: want true or false", v)
	}
	var p api.Policy
	if err := decodeJSON(r, &p, false); err != nil {
		return err
	}
	info, err := h.svc.CreatePolicy(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"), kmsPolicy(p), replace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyInfo(info))
	return nil
}

func (h *handler) describePolicy(w http.ResponseWriter, r *http.Request) error {
	info, err := h.svc.DescribePolicy(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyInfo(info))
	return nil
}

func (h *handler) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeletePolicy(r.Context(), callerOf(r.Context()), enclaveOf(r), param(r, "name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
