package server

import (
	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/kms"
)

// Conversions between the domain's types and the wire types.

// kesKeyInfo is the KES describe answer: the newest version only.
func kesKeyInfo(k kms.KeyInfo) api.KeyInfo {
	return api.KeyInfo{
		Name:      k.Name,
		Algorithm: string(k.Algorithm),
		CreatedAt: k.CreatedAt,
		CreatedBy: string(k.CreatedBy),
	}
}

// keyInfo is the native answer, with every version.
func keyInfo(k kms.KeyInfo) api.KeyInfo {
	info := kesKeyInfo(k)
	info.Version = k.Version
	for _, v := range k.Versions {
		info.Versions = append(info.Versions, api.KeyVersionInfo{
			Version:   v.Version,
			Algorithm: string(v.Algorithm),
			CreatedAt: v.CreatedAt,
			CreatedBy: string(v.CreatedBy),
		})
	}
	return info
}

func enclaveInfo(e kms.EnclaveInfo) api.EnclaveInfo {
	return api.EnclaveInfo{Name: e.Name, CreatedAt: e.CreatedAt, CreatedBy: string(e.CreatedBy)}
}

func identityInfo(i kms.IdentityInfo) api.IdentityInfo {
	return api.IdentityInfo{
		Identity:     string(i.Identity),
		Enclave:      i.Enclave,
		Admin:        i.Admin,
		ClusterAdmin: i.ClusterAdmin,
		Policy:       i.Policy,
		CreatedAt:    i.CreatedAt,
		CreatedBy:    string(i.CreatedBy),
	}
}

func apiPolicy(p kms.Policy) api.Policy {
	return api.Policy{Allow: rulesToAPI(p.Allow), Deny: rulesToAPI(p.Deny)}
}

func kmsPolicy(p api.Policy) kms.Policy {
	return kms.Policy{Allow: rulesToKMS(p.Allow), Deny: rulesToKMS(p.Deny)}
}

func rulesToAPI(m map[kms.Action][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for a, patterns := range m {
		out[string(a)] = patterns
	}
	return out
}

func rulesToKMS(m map[string][]string) map[kms.Action][]string {
	if m == nil {
		return nil
	}
	out := make(map[kms.Action][]string, len(m))
	for a, patterns := range m {
		out[kms.Action(a)] = patterns
	}
	return out
}

func policyInfo(p kms.PolicyInfo) api.PolicyInfo {
	return api.PolicyInfo{
		Name:      p.Name,
		Enclave:   p.Enclave,
		Policy:    apiPolicy(p.Policy),
		CreatedAt: p.CreatedAt,
		CreatedBy: string(p.CreatedBy),
	}
}

func listResponse(p kms.Page) api.ListResponse {
	names := p.Names
	if names == nil {
		names = []string{}
	}
	return api.ListResponse{Names: names, ContinueAt: p.ContinueAt}
}
