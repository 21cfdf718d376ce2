//go:build !unix

package main

// privateUmask does nothing where there is no umask; there, the data
// directory's access control list decides who reads it.
func privateUmask() {}
