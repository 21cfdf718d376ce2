package server_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/minkms/minkms/server"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func TestRootKeyRoundTrip(t *testing.T) {
	s := server.GenerateRootKey()
	if !strings.HasPrefix(s, "r1:") || len(s) != 3+43 {
		t.Fatalf("GenerateRootKey() = %q, want r1: and 43 base64url characters", s)
	}
	key, err := server.ParseRootKey(s + "\n")
	if err != nil {
		t.Fatalf("ParseRootKey(GenerateRootKey()) = %v", err)
	}
	if len(key) != server.RootKeySize {
		t.Errorf("len(key) = %d, want %d", len(key), server.RootKeySize)
	}
	if server.GenerateRootKey() == s {
		t.Error("two generated root keys are equal")
	}
}

func TestParseRootKeyErrors(t *testing.T) {
	valid := server.GenerateRootKey()
	tests := []struct {
		name, in string
	}{
		{"Empty", ""},
		{"NoPrefix", strings.TrimPrefix(valid, "r1:")},
		{"OtherVersion", "r2:" + strings.TrimPrefix(valid, "r1:")},
		{"Short", valid[:len(valid)-2]},
		{"Long", valid + "AAAA"},
		{"Padding", valid + "="},
		{"StdAlphabet", "r1:" + strings.Repeat("+", 43)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.ParseRootKey(tt.in)
			if !errors.Is(err, server.ErrInvalidRootKey) {
				t.Fatalf("ParseRootKey(%q) = %v, want ErrInvalidRootKey", tt.in, err)
			}
			if body := strings.TrimPrefix(tt.in, "r1:"); len(body) > 8 && strings.Contains(err.Error(), body) {
				t.Errorf("error %q contains the key text", err)
			}
		})
	}
}
