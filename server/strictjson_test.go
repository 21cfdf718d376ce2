package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestStrictBodies: the native routes refuse a null body, duplicate fields
// and field names in another case with 400; the KES routes take the very
// same bodies, as KES does.
func TestStrictBodies(t *testing.T) {
	n := MustSharedNode(t)
	n.MustOK(t, n.admin, http.MethodPut, "/v1/key/create/strict-bodies", nil, nil)
	t.Cleanup(func() { n.MustDo(t, n.admin, http.MethodDelete, "/v1/key/delete/strict-bodies", nil) })

	const (
		kes    = "/v1/key/generate/strict-bodies"
		native = "/v1/enclaves/default/keys/strict-bodies/generate"
	)
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"NullBody", `null`, "want a JSON object, not null"},
		{"NullBodyWithSpace", " null\n", "want a JSON object, not null"},
		{"DuplicateField", `{"context":"eA==","context":"eQ=="}`, `duplicate field "context"`},
		{"FieldCase", `{"Context":"eA=="}`, `unknown field "Context": field names are case-sensitive, did you mean "context"?`},
		{"FieldCaseAndExact", `{"context":"eA==","CONTEXT":"eQ=="}`, `unknown field "CONTEXT"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.MustDo(t, n.admin, http.MethodPut, native, []byte(tc.body))
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Message(), tc.msg) {
				t.Errorf("native: %s = %d %q, want 400 containing %q", tc.body, r.Status, r.Message(), tc.msg)
			}
			n.MustOK(t, n.admin, http.MethodPut, kes, []byte(tc.body), nil)
		})
	}

	// Nested objects: the policy's rule map, and a create-key body.
	for _, tc := range []struct {
		name, path, body, msg string
	}{
		{"DuplicateRule", "/v1/enclaves/default/policies/strict", `{"allow":{"key:describe":["a*"],"key:describe":["*"]}}`, `duplicate field "key:describe"`},
		{"DuplicateSection", "/v1/enclaves/default/policies/strict", `{"allow":{"key:describe":["a*"]},"allow":{"key:describe":["*"]}}`, `duplicate field "allow"`},
		{"PolicyFieldCase", "/v1/enclaves/default/policies/strict", `{"Allow":{"key:describe":["*"]}}`, `did you mean "allow"?`},
		{"NullPolicy", "/v1/enclaves/default/policies/strict", `null`, "not null"},
		{"NullCreate", "/v1/enclaves/default/keys/strict-null", `null`, "not null"},
		{"CreateFieldCase", "/v1/enclaves/default/keys/strict-case", `{"ALGORITHM":"ChaCha20"}`, `did you mean "algorithm"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.MustDo(t, n.admin, http.MethodPut, tc.path, []byte(tc.body))
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Message(), tc.msg) {
				t.Errorf("%s %s = %d %q, want 400 containing %q", tc.path, tc.body, r.Status, r.Message(), tc.msg)
			}
		})
	}

	t.Run("ExactBodiesStillWork", func(t *testing.T) {
		n.MustOK(t, n.admin, http.MethodPut, native, []byte(`{"context":"eA==","length":16}`), nil)
		n.MustOK(t, n.admin, http.MethodPut, native, []byte(` {} `), nil)
		n.MustOK(t, n.admin, http.MethodPut, native, nil, nil)
	})
}
