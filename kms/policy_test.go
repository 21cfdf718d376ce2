package kms_test

import (
	"strings"
	"testing"

	"github.com/minkms/minkms/kms"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abcbc", true},
		{"a*c", "abcb", false},
		{"?", "", false},
		{"?", "x", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"**", "x", true},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b*", "xxbxxaxx", false},
		{"key:*", "key:encrypt", true},
		{"key:*", "policy:create", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{strings.Repeat("*a", 40) + "b", strings.Repeat("a", 80), false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.name, func(t *testing.T) {
			if got := kms.MatchPattern(tt.pattern, tt.name); got != tt.want {
				t.Fatalf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}

// refMatch is a plain dynamic-programming matcher: m[i][j] says whether
// pattern[:i] matches name[:j].
func refMatch(pattern, name string) bool {
	m := make([][]bool, len(pattern)+1)
	for i := range m {
		m[i] = make([]bool, len(name)+1)
	}
	m[0][0] = true
	for i := 1; i <= len(pattern); i++ {
		for j := 0; j <= len(name); j++ {
			switch pattern[i-1] {
			case '*':
				m[i][j] = m[i-1][j] || j > 0 && m[i][j-1]
			case '?':
				m[i][j] = j > 0 && m[i-1][j-1]
			default:
				m[i][j] = j > 0 && m[i-1][j-1] && pattern[i-1] == name[j-1]
			}
		}
	}
	return m[len(pattern)][len(name)]
}

func FuzzMatchPattern(f *testing.F) {
	f.Add("a*c", "abc")
	f.Add("*", "")
	f.Add("?*?", "ab")
	f.Add("*a*b*c", "aabbcc")
	f.Add("key:*", "key:encrypt")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 200 || len(name) > 200 {
			return // the reference matcher is quadratic in memory
		}
		if got, want := kms.MatchPattern(pattern, name), refMatch(pattern, name); got != want {
			t.Fatalf("MatchPattern(%q, %q) = %v, reference says %v", pattern, name, got, want)
		}
	})
}

func TestPolicyAllows(t *testing.T) {
	p := &kms.Policy{
		Allow: map[kms.Action][]string{
			"key:*":             {"app-*"},
			kms.ActionKeyHMAC:   {"mac"},
			kms.ActionKeyList:   {"*"},
			"identity:create":   {"*"},
			kms.ActionKeyRotate: {"rot-?"},
		},
		Deny: map[kms.Action][]string{
			kms.ActionKeyDelete: {"app-*"},
			"key:*":             {"app-secret"},
		},
	}
	tests := []struct {
		name   string
		action kms.Action
		key    string
		want   bool
	}{
		{"action pattern allows", kms.ActionKeyEncrypt, "app-1", true},
		{"name does not match", kms.ActionKeyEncrypt, "other", false},
		{"deny of action wins", kms.ActionKeyDelete, "app-1", false},
		{"deny by action pattern wins", kms.ActionKeyDecrypt, "app-secret", false},
		{"exact action", kms.ActionKeyHMAC, "mac", true},
		{"exact action other name", kms.ActionKeyHMAC, "mac2", false},
		{"question mark", kms.ActionKeyRotate, "rot-1", true},
		{"question mark too long", kms.ActionKeyRotate, "rot-12", false},
		{"no rule", kms.ActionPolicyCreate, "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Allows(tt.action, tt.key); got != tt.want {
				t.Fatalf("Allows(%s, %s) = %v, want %v", tt.action, tt.key, got, tt.want)
			}
		})
	}
	t.Run("nil policy", func(t *testing.T) {
		var nilp *kms.Policy
		if nilp.Allows(kms.ActionKeyEncrypt, "x") {
			t.Fatal("nil policy allows")
		}
	})
	t.Run("empty policy", func(t *testing.T) {
		if (&kms.Policy{}).Allows(kms.ActionKeyEncrypt, "x") {
			t.Fatal("empty policy allows")
		}
	})
}

func TestPolicyValidate(t *testing.T) {
	many := make([]string, 257)
	for i := range many {
		many[i] = "k"
	}
	tests := []struct {
		name string
		p    kms.Policy
		ok   bool
	}{
		{"empty", kms.Policy{}, true},
		{"ok", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"a-*", "b?"}}, Deny: map[kms.Action][]string{kms.ActionKeyDelete: {"*"}}}, true},
		{"empty action", kms.Policy{Allow: map[kms.Action][]string{"": {"a"}}}, false},
		{"empty pattern", kms.Policy{Allow: map[kms.Action][]string{"key:*": {""}}}, false},
		{"slash in pattern", kms.Policy{Deny: map[kms.Action][]string{"key:*": {"a/b"}}}, false},
		{"colon in name pattern", kms.Policy{Allow: map[kms.Action][]string{"key:*": {"a:b"}}}, false},
		{"space in action", kms.Policy{Allow: map[kms.Action][]string{"key: x": {"a"}}}, false},
		{"long pattern", kms.Policy{Allow: map[kms.Action][]string{"key:*": {strings.Repeat("a", 129)}}}, false},
		{"too many patterns", kms.Policy{Allow: map[kms.Action][]string{"key:*": many}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.ok {
				wantErr(t, err, nil)
				return
			}
			wantCode(t, err, kms.Invalid)
		})
	}
}
