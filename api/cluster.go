package api

import (
	"context"
	"net/http"
	"net/url"
)

// The membership routes are about the cluster as a whole: any member
// answers them, and a change is made by the leader whichever member is
// asked. Only a cluster admin may call them.

// The suffrage of a member.
const (
	SuffrageVoter    = "voter"    // counts for the quorum and may become leader
	SuffrageNonvoter = "nonvoter" // receives the log but does not vote: a node that is catching up
)

// ClusterMember is a member of the cluster.
type ClusterMember struct {
	ID          string `json:"id"`           // the node id (cluster.node_id)
	PeerAddress string `json:"peer_address"` // host:port the other nodes dial (cluster.advertise_peer)
	APIAddress  string `json:"api_address"`  // host:port of the client API; "" if the node has not reported it
	Suffrage    string `json:"suffrage"`     // SuffrageVoter or SuffrageNonvoter
	Leader      bool   `json:"leader"`       // the member is the leader now
}

// ClusterMembers is the answer of GET /v1/cluster/members.
type ClusterMembers struct {
	Members []ClusterMember `json:"members"`
}

// AddNodeRequest is the body of POST /v1/cluster/members. Address is the
// peer address (host:port of the inter-node listener) of the node to add.
type AddNodeRequest struct {
	Address string `json:"address"`
}

// ClusterMembers returns the members of the cluster, as the member that
// answers knows them, ordered by id. Only a cluster admin may ask; anyone
// else gets ErrNotAllowed.
func (c *Client) ClusterMembers(ctx context.Context) (*ClusterMembers, error) {
	var v ClusterMembers
	if err := c.do(ctx, getState("/v1/cluster/members"), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// AddNode adds the node whose inter-node listener is at peerAddr
// ("host:port", as in its cluster.advertise_peer) to the cluster and
// returns it as a member. The node must be running, must hold the
// cluster's root key, and must present a certificate from the cluster's CA
// that names the host of peerAddr. It is added as a non-voter and becomes
// a voter by itself once it has caught up with the leader.
//
// A node that is a member already gives an *Error with status 409; a node
// that was refused (wrong root key, another cluster, a certificate that
// does not fit) gives a 400 whose message says why. Only a cluster admin
// may add nodes; anyone else gets ErrNotAllowed.
func (c *Client) AddNode(ctx context.Context, peerAddr string) (*ClusterMember, error) {
	body, err := marshal(AddNodeRequest{Address: peerAddr})
	if err != nil {
		return nil, err
	}
	var v ClusterMember
	if err := c.do(ctx, request{write: true, method: http.MethodPost, path: "/v1/cluster/members", body: body}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// RemoveNode removes the member of that id from the cluster. The node
// need not be running: removing a dead node is how its vote stops counting
// for the quorum. An id that is not a member gives an *Error with status
// 404. Only a cluster admin may remove nodes; anyone else gets
// ErrNotAllowed.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.do(ctx, request{write: true, method: http.MethodDelete, path: "/v1/cluster/members/" + url.PathEscape(id)}, nil)
}
