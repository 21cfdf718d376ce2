package kms

// MatchPattern reports whether name matches pattern, in which '*' matches any
// run of bytes (also the empty one), '?' exactly one byte, and every other
// byte itself. Names and patterns are ASCII, so a byte is a character.
//
// It is the usual greedy matcher that remembers only the last '*' and
// backtracks to it: no recursion, no regular expression, and
// O(len(pattern)·len(name)) time at worst.
func MatchPattern(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0 // position of the last '*' in pattern, and of name when it was seen
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case star >= 0:
			// Let the last '*' swallow one more byte and try again.
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
