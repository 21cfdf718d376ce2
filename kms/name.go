package kms

import "fmt"

// MaxNameLen is the longest name of a key, policy or enclave.
const MaxNameLen = 80

// ValidName returns nil if s is a valid name of a key, policy or enclave:
// 1 to 80 characters of [A-Za-z0-9_.-], and neither "." nor "..". Names
// become path elements of the state and of URLs, so nothing else is allowed.
// Otherwise it returns an Invalid error that says what is wrong.
func ValidName(s string) error {
	switch {
	case s == "":
		return Invalidf("invalid name: name is empty")
	case len(s) > MaxNameLen:
		return Invalidf("invalid name: longer than %d characters", MaxNameLen)
	case s == "." || s == "..":
		return Invalidf("invalid name %q: reserved", s)
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return Invalidf("invalid name %q: character %s at position %d is not allowed (only A-Z a-z 0-9 _ . -)", s, quoteByte(s[i]), i)
		}
	}
	return nil
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("0x%02x", c)
	}
	return fmt.Sprintf("%q", rune(c))
}
