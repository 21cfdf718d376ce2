package kms

import "sort"

// Action is something a caller may do, named as in policies: "key:encrypt".
type Action string

// The actions. Users (identities that are not admins) may only do key
// actions, and only those their policy allows; the other actions are for
// admins and are listed so that policies and logs can name them.
const (
	ActionKeyCreate   Action = "key:create"
	ActionKeyImport   Action = "key:import"
	ActionKeyDescribe Action = "key:describe"
	ActionKeyList     Action = "key:list"
	ActionKeyDelete   Action = "key:delete" // also deletes single versions
	ActionKeyRotate   Action = "key:rotate"
	ActionKeyEncrypt  Action = "key:encrypt"
	ActionKeyDecrypt  Action = "key:decrypt"
	ActionKeyGenerate Action = "key:generate"
	ActionKeyHMAC     Action = "key:hmac"

	ActionIdentityCreate   Action = "identity:create"
	ActionIdentityDescribe Action = "identity:describe"
	ActionIdentityList     Action = "identity:list"
	ActionIdentityDelete   Action = "identity:delete"

	ActionPolicyCreate   Action = "policy:create"
	ActionPolicyDescribe Action = "policy:describe"
	ActionPolicyList     Action = "policy:list"
	ActionPolicyDelete   Action = "policy:delete"

	ActionEnclaveCreate   Action = "enclave:create"
	ActionEnclaveDescribe Action = "enclave:describe"
	ActionEnclaveList     Action = "enclave:list"
	ActionEnclaveDelete   Action = "enclave:delete"

	// Node actions: reading a node's log and its audit trail. A policy
	// names the node ids they apply to ("*" for every node; "all" is the
	// name of a request for every node at once).
	ActionLogRead   Action = "log:read"
	ActionAuditRead Action = "audit:read"
)

// Limits on a policy, so that checking one stays cheap.
const (
	maxPolicyRules   = 256 // patterns in Allow and Deny together
	maxPatternLength = 128
)

// Policy says what a user may do. Allow and Deny map an action, or an action
// pattern such as "key:*", to patterns of names. A request is allowed if some
// allow rule matches its action and name and no deny rule does: deny wins,
// and nothing is allowed that no rule allows.
type Policy struct {
	Allow map[Action][]string `json:"allow,omitempty"`
	Deny  map[Action][]string `json:"deny,omitempty"`
}

// Validate returns an Invalid error if p has an empty or malformed action or
// name pattern, or more than 256 patterns.
func (p *Policy) Validate() error {
	n := 0
	for _, rules := range []map[Action][]string{p.Allow, p.Deny} {
		for a, patterns := range rules {
			if err := validPattern(string(a), true); err != nil {
				return err
			}
			for _, pat := range patterns {
				if err := validPattern(pat, false); err != nil {
					return err
				}
			}
			n += len(patterns)
		}
	}
	if n > maxPolicyRules {
		return Invalidf("invalid policy: more than %d patterns", maxPolicyRules)
	}
	return nil
}

func validPattern(s string, action bool) error {
	what := "name pattern"
	if action {
		what = "action"
	}
	if s == "" {
		return Invalidf("invalid policy: empty %s", what)
	}
	if len(s) > maxPatternLength {
		return Invalidf("invalid policy: %s longer than %d characters", what, maxPatternLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isNameByte(c) || c == '*' || c == '?' || (action && c == ':') {
			continue
		}
		return Invalidf("invalid policy: %s %q: character %s is not allowed", what, truncate(s, 40), quoteByte(c))
	}
	return nil
}

// Allows reports whether p allows action a on name. A nil policy allows
// nothing.
func (p *Policy) Allows(a Action, name string) bool {
	if p == nil {
		return false
	}
	return !matchRules(p.Deny, a, name) && matchRules(p.Allow, a, name)
}

// allowsSome reports whether p allows a on some name at all: whether an
// allow rule names the action. Listing uses it before filtering names.
func (p *Policy) allowsSome(a Action) bool {
	if p == nil {
		return false
	}
	for ap, patterns := range p.Allow {
		if len(patterns) > 0 && MatchPattern(string(ap), string(a)) {
			return true
		}
	}
	return false
}

func matchRules(rules map[Action][]string, a Action, name string) bool {
	for ap, patterns := range rules {
		if !MatchPattern(string(ap), string(a)) {
			continue
		}
		for _, pat := range patterns {
			if MatchPattern(pat, name) {
				return true
			}
		}
	}
	return false
}

// clone returns a deep copy of p with its patterns sorted, so that stored
// policies read back the same.
func (p Policy) clone() Policy {
	cp := func(m map[Action][]string) map[Action][]string {
		if len(m) == 0 {
			return nil
		}
		out := make(map[Action][]string, len(m))
		for a, pats := range m {
			s := append([]string(nil), pats...)
			sort.Strings(s)
			out[a] = s
		}
		return out
	}
	return Policy{Allow: cp(p.Allow), Deny: cp(p.Deny)}
}
