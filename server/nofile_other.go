//go:build !unix

package server

import "errors"

// openFileLimit is unknown where there is no RLIMIT_NOFILE.
func openFileLimit() (uint64, error) {
	return 0, errors.New("no RLIMIT_NOFILE on this platform")
}
