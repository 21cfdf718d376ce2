package kms

// ActionMetricsRead lets a user read the node's Prometheus metrics (GET
// /metrics). It is about no key and no enclave: a policy grants it with
// the name pattern "*", as in {"allow": {"metrics:read": ["*"]}}.
const ActionMetricsRead Action = "metrics:read"
