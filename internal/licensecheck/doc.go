// Package licensecheck holds the test that keeps minkms's dependencies
// compatible with its Apache-2.0 licence: every module the build and the
// tests use must be under Apache-2.0, a BSD licence, MIT, ISC or MPL-2.0,
// and none may be (A)GPL. The test reads each module's licence file from
// the module cache, offline.
package licensecheck
