package server

// Version is the version of this build, set at link time with
// -ldflags "-X github.com/minkms/minkms/server.Version=v1.2.3".
var Version = "dev"
