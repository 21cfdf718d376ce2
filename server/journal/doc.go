// Package journal keeps what a node has to say: its log records and its
// audit trail, in memory, so that the log API can serve them from any node
// without a log shipper.
//
// A Journal is a slog.Handler in front of the node's output handler
// (stderr: tint, plain text or JSON). Every record that passes the level
// (a slog.LevelVar that the log API can change) goes to the output and into
// a ring of the most recent records, bounded by count and bytes; WARN and
// above go into a second ring too, so that a flood of INFO lines cannot
// push a certificate warning out. Identical records within a second are
// folded into one with a repeat count. Every record gets the node's id and
// a sequence number, one counter per node and stream, so that a reader can
// ask for "everything after 4711" and learn how many records it lost.
//
// Nothing here blocks a caller on a reader: readers poll the rings (Read)
// and wait for news (Changed); a reader that falls behind finds records
// evicted and is told how many.
//
// What it is not: a store. The rings live as long as the process; the
// audit trail's durable copy is the audit file that package server writes.
package journal
