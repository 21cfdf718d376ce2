//go:build !linux

package main

import "syscall"

// childProcAttr leaves a development node in the supervisor's process
// group. There is no parent-death signal outside Linux: Ctrl-C reaches the
// nodes and the supervisor alike and stops them all, but a supervisor
// killed with SIGKILL leaves its nodes running (kill them by the pids it
// printed).
func childProcAttr() *syscall.SysProcAttr { return nil }
