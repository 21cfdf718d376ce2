// Package integration holds the end-to-end tests of minkms: they build the
// real binary once, start it as real processes on loopback ports with
// generated certificates, and drive it through the CLI and the Go SDK, the
// way an operator and an application would.
package integration
