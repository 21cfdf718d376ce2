package server

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
)

// memberInfo is a member of the cluster as the cluster layer reports it.
type memberInfo = cluster.Member

var _ clusterAdmin = (*cluster.Node)(nil)

// clusterAdmin is the part of the cluster node that the membership routes
// use. Its errors wrap errNoLeader, errOutcomeUnknown, errOverloaded,
// errAlreadyMember, errNotMember or errRefused where they apply, so that
// clusterErrors answers them.
type clusterAdmin interface {
	// Members returns the members of the cluster as this node knows them.
	Members(ctx context.Context) ([]memberInfo, error)
	// AddNode adds the node whose inter-node listener is at peerAddr, as a
	// non-voter that is promoted once it has caught up, and returns it. A
	// node that is a member already gives errAlreadyMember; one that was
	// refused errRefused, with a message that says why.
	AddNode(ctx context.Context, peerAddr string) (memberInfo, error)
	// RemoveNode removes the member of that id, running or not. An id
	// that is no member gives errNotMember.
	RemoveNode(ctx context.Context, id string) error
}

var errClusterUnavailable = &kms.Error{Code: kms.Unavailable, Message: "cluster membership unavailable"}

// maxNodeID bounds the node ids the routes accept.
const maxNodeID = 128

// clusterRoutes registers the routes under /v1/cluster.
func (h *handler) clusterRoutes(r chi.Router, putOrPost func(chi.Router, string, apiFunc)) {
	r.Get("/v1/cluster/members", h.handle(h.clusterMembers))
	putOrPost(r, "/v1/cluster/members", h.addNode)
	r.Delete("/v1/cluster/members/{id}", h.handle(h.removeNode))
	r.Get("/v1/cluster/status", h.handle(h.clusterStatus))
}

// clusterNode returns the cluster after checking that the caller is a
// cluster admin. As on the other routes, the input is checked before the
// caller: a malformed request is 400 whoever sends it.
func (h *handler) clusterNode(r *http.Request) (clusterAdmin, error) {
	if err := requireClusterAdmin(r); err != nil {
		return nil, err
	}
	if h.cluster == nil {
		return nil, errClusterUnavailable
	}
	return h.cluster, nil
}

func (h *handler) clusterMembers(w http.ResponseWriter, r *http.Request) error {
	c, err := h.clusterNode(r)
	if err != nil {
		return err
	}
	members, err := c.Members(r.Context())
	if err != nil {
		return err
	}
	resp := api.ClusterMembers{Members: make([]api.ClusterMember, 0, len(members))}
	for _, m := range members {
		resp.Members = append(resp.Members, clusterMember(m))
	}
	slices.SortFunc(resp.Members, func(a, b api.ClusterMember) int { return cmp.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (h *handler) addNode(w http.ResponseWriter, r *http.Request) error {
	var req api.AddNodeRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if err := validPeerAddress(req.Address); err != nil {
		return err
	}
	c, err := h.clusterNode(r)
	if err != nil {
		return err
	}
	m, err := c.AddNode(r.Context(), req.Address)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, clusterMember(m))
	return nil
}

func (h *handler) removeNode(w http.ResponseWriter, r *http.Request) error {
	id := param(r, "id")
	if err := validNodeID(id); err != nil {
		return err
	}
	c, err := h.clusterNode(r)
	if err != nil {
		return err
	}
	if err := c.RemoveNode(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func clusterMember(m memberInfo) api.ClusterMember {
	return api.ClusterMember{
		ID:          m.ID,
		PeerAddress: m.PeerAddr,
		APIAddress:  m.APIAddr,
		Suffrage:    suffrage(m.Voter),
		Leader:      m.Leader,
	}
}

func suffrage(voter bool) string {
	if voter {
		return api.SuffrageVoter
	}
	return api.SuffrageNonvoter
}

// validPeerAddress accepts host:port with a host the other nodes can dial
// (not a wildcard) and a port from 1 to 65535.
func validPeerAddress(addr string) error {
	if addr == "" {
		return kms.Invalidf(`invalid address: missing; want the node's peer address as "host:port"`)
	}
	if strings.Contains(addr, "/") {
		return kms.Invalidf(`invalid address %q: want "host:port", without a scheme or a path`, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return kms.Invalidf(`invalid address %q: want "host:port"`, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return kms.Invalidf("invalid address %q: the port must be a number from 1 to 65535", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return kms.Invalidf("invalid address %q: %s is no address another node can dial", addr, host)
	}
	for _, c := range []byte(host) {
		if c <= ' ' || c >= 0x7f {
			return kms.Invalidf("invalid address %q: the host holds a space or a control character", addr)
		}
	}
	return nil
}

// validNodeID accepts 1 to maxNodeID printable ASCII characters without
// spaces: whatever id the cluster layer accepts fits.
func validNodeID(id string) error {
	if id == "" || len(id) > maxNodeID {
		return kms.Invalidf("invalid node id: want 1 to %d characters", maxNodeID)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f {
			return kms.Invalidf("invalid node id %q: only printable characters without spaces", id)
		}
	}
	return nil
}
