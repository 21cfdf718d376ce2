package api

import (
	"context"
	"strings"
)

// Why and when to ask for consistent reads: see "Consistent reads" in
// doc.go.

type consistentReadsKey struct{}

// WithConsistentReads returns a copy of ctx under which the describe and
// list methods of a Client ask for a consistent read (consistent true) or
// for an answer from the replica of the node that answers (false),
// whatever Config.ConsistentReads says. A consistent read is answered only
// once the node has caught up with the leader; without a leader it is
// answered ErrNoLeader, and the Client moves on to the next endpoint. The
// other methods are not affected: writes go through the leader anyway,
// the cryptographic operations and the node's own status are not reads of
// the replicated state.
func WithConsistentReads(ctx context.Context, consistent bool) context.Context {
	return context.WithValue(ctx, consistentReadsKey{}, consistent)
}

// consistentReads reports whether the describes and lists of ctx ask for a
// consistent read.
func (c *Client) consistentReads(ctx context.Context) bool {
	if v, ok := ctx.Value(consistentReadsKey{}).(bool); ok {
		return v
	}
	return c.consistent
}

// withConsistent adds consistent=true to an API path with or without a
// query.
func withConsistent(path string) string {
	if strings.Contains(path, "?") {
		return path + "&consistent=true"
	}
	return path + "?consistent=true"
}
