package server_test

import (
	"net/http"
	"testing"

	"github.com/minkms/minkms/api"
)

// TestClusterRoutesClusterAdminsOnly: an enclave admin of the default
// enclave, who may do everything in it, may not see or change the members.
func TestClusterRoutesClusterAdminsOnly(t *testing.T) {
	n := MustSharedNode(t)
	admin, key := n.MustClient(t)
	path := "/v1/enclaves/default/identities/" + key.Identity()
	n.MustOK(t, n.admin, http.MethodPut, path, api.CreateIdentityRequest{Admin: true}, nil)
	t.Cleanup(func() { n.MustDo(t, n.admin, http.MethodDelete, path, nil) }) // the node is shared

	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v1/cluster/members", nil},
		{http.MethodPost, "/v1/cluster/members", api.AddNodeRequest{Address: "n4.example:7374"}},
		{http.MethodDelete, "/v1/cluster/members/n1", nil},
	} {
		resp := n.MustDo(t, admin, r.method, r.path, r.body)
		if resp.Status != http.StatusForbidden || resp.Message() != api.ErrNotAllowed.Message {
			t.Errorf("%s %s as an enclave admin = %d %q, want 403 %q", r.method, r.path, resp.Status, resp.Message(), api.ErrNotAllowed.Message)
		}
	}
}
