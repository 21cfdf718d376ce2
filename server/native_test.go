package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestEnclaveFlow drives the native routes the way an operator sets up a
// tenant: an enclave, a policy, a user with that policy, and its keys.
func TestEnclaveFlow(t *testing.T) {
	n := MustSharedNode(t)
	const e = "/v1/enclaves/tenant-a"
	user, key := n.MustClient(t)

	var enclave api.EnclaveInfo
	n.MustOK(t, n.admin, http.MethodPut, e, nil, &enclave)
	if enclave.Name != "tenant-a" || enclave.CreatedBy == "" {
		t.Errorf("create enclave = %+v", enclave)
	}
	var enclaves api.ListResponse
	n.MustOK(t, n.admin, http.MethodGet, "/v1/enclaves?prefix=tenant-", nil, &enclaves)
	if !slices.Equal(enclaves.Names, []string{"tenant-a"}) {
		t.Errorf("list enclaves = %v, want [tenant-a]", enclaves.Names)
	}

	policy := api.Policy{
		Allow: map[string][]string{"key:encrypt": {"app-*"}, "key:decrypt": {"app-*"}},
		Deny:  map[string][]string{"key:decrypt": {"app-secret"}},
	}
	var pinfo api.PolicyInfo
	n.MustOK(t, n.admin, http.MethodPut, e+"/policies/app", policy, &pinfo)
	if pinfo.Name != "app" || pinfo.Enclave != "tenant-a" || len(pinfo.Policy.Allow["key:encrypt"]) != 1 {
		t.Errorf("create policy = %+v", pinfo)
	}
	if r := n.MustDo(t, n.admin, http.MethodPut, e+"/policies/app", policy); r.Status != http.StatusConflict || r.Message() != api.ErrPolicyExists.Message {
		t.Errorf("create policy again = %d %q, want 409 %q", r.Status, r.Message(), api.ErrPolicyExists.Message)
	}
	n.MustOK(t, n.admin, http.MethodPut, e+"/policies/app?replace=true", policy, nil)

	var id api.IdentityInfo
	n.MustOK(t, n.admin, http.MethodPut, e+"/identities/"+key.Identity(), api.CreateIdentityRequest{Policy: "app"}, &id)
	if id.Identity != key.Identity() || id.Enclave != "tenant-a" || id.Policy != "app" || id.Admin {
		t.Errorf("create identity = %+v", id)
	}
	var ids api.ListResponse
	n.MustOK(t, n.admin, http.MethodGet, e+"/identities?prefix=h1:", nil, &ids)
	if !slices.Equal(ids.Names, []string{key.Identity()}) {
		t.Errorf("list identities = %v, want [%s]", ids.Names, key.Identity())
	}

	n.MustOK(t, n.admin, http.MethodPut, e+"/keys/app-data", api.CreateKeyRequest{Algorithm: "ChaCha20"}, nil)
	n.MustOK(t, n.admin, http.MethodPut, e+"/keys/app-secret", nil, nil)
	n.MustOK(t, n.admin, http.MethodPut, e+"/keys/other", nil, nil)

	// The user works in its own enclave through the KES routes.
	var self api.SelfResponse
	n.MustOK(t, user, http.MethodGet, "/v1/identity/self/describe", nil, &self)
	if self.Enclave != "tenant-a" || self.PolicyRules == nil {
		t.Errorf("self = %+v, want tenant-a with its policy", self)
	}
	var enc api.EncryptKeyResponse
	n.MustOK(t, user, http.MethodPut, "/v1/key/encrypt/app-data", api.EncryptKeyRequest{Plaintext: []byte("p")}, &enc)
	n.MustOK(t, user, http.MethodPut, "/v1/key/decrypt/app-data", api.DecryptKeyRequest{Ciphertext: enc.Ciphertext}, nil)
	denied := []struct{ name, method, path string }{
		{"NoRule", http.MethodPut, "/v1/key/encrypt/other"},
		{"DenyWins", http.MethodPut, "/v1/key/decrypt/app-secret"},
		{"NotAllowedAction", http.MethodPut, "/v1/key/create/app-new"},
		{"OtherEnclave", http.MethodGet, "/v1/enclaves/default/keys"},
		{"Enclaves", http.MethodPut, "/v1/enclaves/tenant-b"},
	}
	for _, d := range denied {
		t.Run(d.name, func(t *testing.T) {
			r := n.MustDo(t, user, d.method, d.path, api.EncryptKeyRequest{Plaintext: []byte("p")})
			if r.Status != http.StatusForbidden || r.Message() != api.ErrNotAllowed.Message {
				t.Errorf("%s %s as the user = %d %q, want 403 %q", d.method, d.path, r.Status, r.Message(), api.ErrNotAllowed.Message)
			}
		})
	}

	n.MustOK(t, n.admin, http.MethodGet, e+"/identities/"+key.Identity(), nil, &id)
	n.MustOK(t, n.admin, http.MethodDelete, e+"/identities/"+key.Identity(), nil, nil)
	if r := n.MustDo(t, user, http.MethodGet, "/v1/identity/self/describe", nil); r.Status != http.StatusForbidden {
		t.Errorf("self after the identity was deleted = %d, want 403", r.Status)
	}
	n.MustOK(t, n.admin, http.MethodGet, e+"/policies/app", nil, nil)
	n.MustOK(t, n.admin, http.MethodDelete, e+"/policies/app", nil, nil)
	n.MustOK(t, n.admin, http.MethodDelete, e+"/keys/other", nil, nil)
	n.MustOK(t, n.admin, http.MethodDelete, e, nil, nil)
	if r := n.MustDo(t, n.admin, http.MethodGet, e, nil); r.Status != http.StatusNotFound || r.Message() != api.ErrEnclaveNotFound.Message {
		t.Errorf("describe a deleted enclave = %d %q, want 404", r.Status, r.Message())
	}
}

// TestNativeRoutesCheckInOrder: on the native routes as on the KES ones, an
// unknown route is 404 and a bad name 400 whoever asks, before the caller
// is authenticated.
func TestNativeRoutesCheckInOrder(t *testing.T) {
	n := MustSharedNode(t)
	stranger, _ := n.MustClient(t)
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		status int
	}{
		{"UnknownRouteNoCertificate", n.anon, http.MethodGet, "/v1/enclaves/default/nothing", http.StatusNotFound},
		{"UnknownRouteStranger", stranger, http.MethodGet, "/v1/enclaves/default/nothing", http.StatusNotFound},
		{"MethodNoCertificate", n.anon, http.MethodPatch, "/v1/enclaves/default", http.StatusMethodNotAllowed},
		{"BadNameStranger", stranger, http.MethodGet, "/v1/enclaves/default/keys/a:b", http.StatusBadRequest},
		{"BadEnclaveStranger", stranger, http.MethodGet, "/v1/enclaves/%2E%2E/keys", http.StatusBadRequest},
		{"BadIdentityNoCertificate", n.anon, http.MethodGet, "/v1/enclaves/default/identities/alice", http.StatusBadRequest},
		{"BadVersionStranger", stranger, http.MethodDelete, "/v1/enclaves/default/keys/k/versions/0", http.StatusBadRequest},
		{"GoodNameStranger", stranger, http.MethodGet, "/v1/enclaves/default/keys/k", http.StatusForbidden},
		{"GoodNameNoCertificate", n.anon, http.MethodGet, "/v1/enclaves/default/keys/k", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := n.MustDo(t, tt.client, tt.method, tt.path, nil); r.Status != tt.status {
				t.Errorf("%s %s = %d %q, want %d", tt.method, tt.path, r.Status, r.Message(), tt.status)
			}
		})
	}
}
