// Command minkms is the one binary of minkms: `minkms server` runs a node,
// and the other commands manage keys, enclaves, identities and policies of
// a running cluster through the Go client SDK (package api).
//
// Run `minkms --help` for the commands, `minkms COMMAND --help` for each.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
