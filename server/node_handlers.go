package server

import (
	"context"
	"net/http"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/tlsmgr"
)

// nodeInfo is what the node routes need to know of the node.
type nodeInfo interface {
	ID() string
	IsLeader() bool
	// Role is the node's raft role ("leader", "follower", "candidate").
	Role() string
	// LeaderID is the id of the leader this node knows, "" if none.
	LeaderID() string
	Started() time.Time
	// ClusterID returns the id of the cluster, "" while it is not known.
	ClusterID() string
	// Ready returns nil when raft has a leader and kms is initialised,
	// else an Unavailable error that says why not.
	Ready(ctx context.Context) error
}

// certManager is the part of tlsmgr.Manager the TLS routes use.
type certManager interface {
	Status() tlsmgr.Status
	Reload(ctx context.Context) tlsmgr.ReloadResult
}

var _ certManager = (*tlsmgr.Manager)(nil)

var errTLSUnavailable = &kms.Error{Code: kms.Unavailable, Message: "TLS status unavailable"}

func (h *handler) version(w http.ResponseWriter, r *http.Request) error {
	// The cluster id is not secret: a client that is not let in yet needs
	// it to make an identity proof.
	writeJSON(w, http.StatusOK, api.VersionResponse{Version: Version, ClusterID: h.node.ClusterID()})
	return nil
}

func (h *handler) live(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.HealthResponse{Status: "ok"})
	return nil
}

func (h *handler) ready(w http.ResponseWriter, r *http.Request) error {
	if err := h.node.Ready(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.HealthResponse{Status: "ok"})
	return nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, nodeStatus(h.node))
	return nil
}

func (h *handler) self(w http.ResponseWriter, r *http.Request) error {
	id, policy, err := h.svc.Self(r.Context(), callerOf(r.Context()))
	if err != nil {
		return err
	}
	resp := api.SelfResponse{IdentityInfo: identityInfo(id)}
	if policy != nil {
		p := apiPolicy(*policy)
		resp.PolicyRules = &p
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// requireClusterAdmin refuses everyone but the cluster admins.
func requireClusterAdmin(r *http.Request) error {
	if !callerOf(r.Context()).ClusterAdmin {
		return kms.ErrNotAllowed
	}
	return nil
}

func (h *handler) tlsStatus(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	if h.certs == nil {
		return errTLSUnavailable
	}
	writeJSON(w, http.StatusOK, apiTLSStatus(h.certs.Status()))
	return nil
}

// tlsReload reloads the certificates and answers what happened to each
// pair. A refused candidate is not an error of the request: the answer is
// 200 and says "failed" with the reason.
func (h *handler) tlsReload(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	if h.certs == nil {
		return errTLSUnavailable
	}
	writeJSON(w, http.StatusOK, apiTLSReloadResult(h.certs.Reload(r.Context())))
	return nil
}
