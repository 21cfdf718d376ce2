package server

import (
	"runtime"
	"time"

	"github.com/minkms/minkms/api"
)

// nodeStatus returns the answer of GET /v1/status: KES's fields in KES's
// units (uptime in seconds, CPUs, heap and stack bytes), so `kes status`
// and MinIO read true numbers, then the node's own.
func nodeStatus(node nodeInfo) api.StatusResponse {
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	return api.StatusResponse{
		Version:    Version,
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		UpTime:     uptimeSeconds(node.Started(), time.Now()),
		CPUs:       runtime.NumCPU(),
		UsableCPUs: runtime.GOMAXPROCS(0),
		HeapAlloc:  mem.HeapAlloc,
		StackAlloc: mem.StackSys,

		NodeID:   node.ID(),
		Role:     node.Role(),
		Leader:   node.IsLeader(),
		LeaderID: node.LeaderID(),

		ClusterID: node.ClusterID(),
	}
}

// uptimeSeconds is the whole seconds from started to now, at least 1 so
// that a node that just started does not look down.
func uptimeSeconds(started, now time.Time) uint64 {
	d := now.Sub(started)
	if started.IsZero() || d < time.Second {
		return 1
	}
	return uint64(d / time.Second)
}
