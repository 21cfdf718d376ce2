package kms

import (
	"context"
	"strings"
)

// ActionMetricsRead lets a user read the node's Prometheus metrics (GET
// /metrics). It is about no key and no enclave: a policy grants it with
// the name pattern "*", as in {"allow": {"metrics:read": ["*"]}}.
const ActionMetricsRead Action = "metrics:read"

// AuthorizeNode checks that c may do a, an action on the node itself
// rather than on a key (only ActionMetricsRead is one): cluster admins
// may; a user may if the policy of its own enclave allows a on "*". Enclave
// admins, who act inside their enclave only, and everyone else get
// ErrNotAllowed.
func (s *Service) AuthorizeNode(ctx context.Context, c Caller, a Action) error {
	if c.Identity == "" {
		return ErrNotAllowed
	}
	if c.ClusterAdmin {
		return nil
	}
	if !strings.HasPrefix(string(a), "metrics:") || c.Admin {
		return ErrNotAllowed
	}
	pol, admin, err := s.enter(ctx, c, c.Enclave)
	if err != nil {
		return err
	}
	if admin || !pol.Allows(a, "*") {
		return ErrNotAllowed
	}
	return nil
}
