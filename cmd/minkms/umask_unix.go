//go:build unix

package main

import "syscall"

// privateUmask makes every file and directory the process creates from now
// on private to its user (0600 and 0700 at most). Raft creates its snapshot
// directories and files with fixed modes (0755, 0644), and they hold key
// names and identity hashes in clear; a umask is the one control over them.
func privateUmask() {
	syscall.Umask(0o077)
}
