package kms

// Algorithm is the AEAD a key version encrypts with. Every algorithm takes
// 32 bytes of key material.
type Algorithm string

const (
	AES256   Algorithm = "AES256"   // AES-256-GCM
	ChaCha20 Algorithm = "ChaCha20" // ChaCha20-Poly1305 (RFC 8439)
)

// KeySize is the length of the key material of every key version.
const KeySize = 32

// ParseAlgorithm returns the Algorithm s names: "AES256" or "AES-256-GCM",
// "ChaCha20" or "ChaCha20-Poly1305", and AES256 for "". Otherwise it returns
// an Invalid error.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "", "AES256", "AES-256-GCM", "AES256-GCM":
		return AES256, nil
	case "ChaCha20", "ChaCha20-Poly1305", "CHACHA20", "CHACHA20-POLY1305":
		return ChaCha20, nil
	}
	return "", Invalidf("invalid algorithm %q: use AES256 or ChaCha20", truncate(s, 40))
}

// String returns the algorithm's name.
func (a Algorithm) String() string { return string(a) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
