package main

import "syscall"

// childProcAttr puts a development node in its own process group, so that
// Ctrl-C reaches only the supervisor, which stops the nodes in order; and
// makes the kernel send it SIGTERM when the supervisor dies, even by
// SIGKILL, so that no node outlives it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
