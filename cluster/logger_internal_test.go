package cluster

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// A node that stops closes its inbound raft connections under their reads;
// raft logs each as an error. The transport's logger keeps those out of an
// operator's log at info level, and keeps every other failure.
func TestTransportLoggerQuietOnLocalClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	_, closedErr := conn.Read(make([]byte, 1))
	if !errors.Is(closedErr, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v, want net.ErrClosed", closedErr)
	}

	for _, tc := range []struct {
		name  string
		msg   string
		err   error
		quiet bool
	}{
		{"closed here", "failed to decode incoming command", closedErr, true},
		{"transport shut down", "failed to decode incoming command", raft.ErrTransportShutdown, true},
		{"peer sent garbage", "failed to decode incoming command", errors.New("unknown rpc type 9"), false},
		{"peer broke off", "failed to decode incoming command", io.ErrUnexpectedEOF, false},
		{"other message", "failed to flush response", closedErr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			transportLogger(logger).Error(tc.msg, "error", tc.err)
			if got := buf.String(); tc.quiet != (got == "") {
				t.Fatalf("quiet %v, logged %q", tc.quiet, got)
			} else if !tc.quiet && !strings.Contains(got, "level=ERROR") {
				t.Fatalf("logged %q, want it at ERROR", got)
			}
		})
	}
}

// While a node runs, a peer that stops answering is an error in its log;
// once the node itself stops, as when a whole cluster stops, it is not.
func TestRaftLoggerQuietOnPeersWhileStopping(t *testing.T) {
	var stopping atomic.Bool
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	raftLog := newHCLogAdapter(logger)
	raftLog.demote = demoteWhileStopping(&stopping)
	named := raftLog.Named("replication") // derived loggers keep the rule

	named.Error("failed to heartbeat to", "peer", "127.0.0.1:7384", "error", io.EOF)
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("a running node logged %q, want the failed heartbeat as an error", buf.String())
	}
	buf.Reset()

	stopping.Store(true)
	named.Error("failed to heartbeat to", "peer", "127.0.0.1:7384", "error", io.EOF)
	named.Warn("failed to contact quorum of nodes, stepping down")
	if buf.Len() != 0 {
		t.Fatalf("a stopping node logged %q about peers going away", buf.String())
	}
	named.Error("failed to get log", "index", 7, "error", io.ErrUnexpectedEOF)
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("a stopping node logged %q, want a failure of its own as an error", buf.String())
	}
}
