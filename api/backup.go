package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minkms/minkms/storage/backup"
)

// Backups are about the cluster as a whole, and only a cluster admin may
// take or restore one. A backup is a header (see package
// github.com/minkms/minkms/storage/backup) followed by the node's state
// file: every key, enclave, identity and policy, with the values sealed
// under the cluster's root key as they are on disk. It is useless without
// the root key, and restores only into a cluster with the same root key.

// BackupInfo describes a backup: what its header says.
type BackupInfo struct {
	ClusterID string    `json:"cluster_id"` // the cluster it was taken from
	NodeID    string    `json:"node_id"`    // the node that took it
	Index     uint64    `json:"index"`      // the applied raft index of the state it holds
	Created   time.Time `json:"created"`
	Size      int64     `json:"size"` // bytes of the whole backup, header included
}

// RestoreResponse is the answer of POST /v1/restore.
type RestoreResponse struct {
	ClusterID       string `json:"cluster_id"`        // the cluster restored into; it keeps its id
	Index           uint64 `json:"index"`             // the raft index of the restored state in this cluster
	BackupClusterID string `json:"backup_cluster_id"` // the cluster the backup was taken from
	BackupIndex     uint64 `json:"backup_index"`      // the index the backup held there
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force restores into a cluster that is not fresh, replacing whatever
	// it holds. Without it a cluster that holds anything beyond the empty
	// default enclave refuses the restore with a 409.
	Force bool
}

// Backup writes a backup of the whole state to w and returns what its
// header says. The first endpoint that answers takes it from its own
// replica: on a follower that is the state as of what it has applied,
// which may lag the leader by a heartbeat; with consistent, the node first
// catches up with the leader, so the backup holds every write
// acknowledged before the call. The backup is checked as it arrives (its
// header's checksum, its size and the SHA-256 of the state): a damaged or
// cut-off transfer is an error wrapping backup.ErrFormat, and w then holds
// a partial copy that must be discarded.
//
// Backups are not bounded by Config.Timeout: bound them with ctx. Only a
// cluster admin may take one; anyone else gets ErrNotAllowed.
func (c *Client) Backup(ctx context.Context, w io.Writer, consistent bool) (*BackupInfo, error) {
	path := "/v1/backup"
	if consistent {
		path += "?consistent=true"
	}
	var errs []error
	for i := range c.endpoints {
		endpoint := c.endpoints[(int(c.last.Load())+i)%len(c.endpoints)]
		info, err := c.backupFrom(ctx, endpoint+path, w)
		var te *transportError
		if err == nil || ctx.Err() != nil || !errors.As(err, &te) {
			return info, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("api: GET /v1/backup: no endpoint answered: %w", errors.Join(errs...))
}

func (c *Client) backupFrom(ctx context.Context, u string, w io.Writer) (*BackupInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("api: GET /v1/backup: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, &transportError{endpoint: u, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
		return nil, decodeError(resp.StatusCode, body)
	}
	cw := &countingWriter{w: w}
	h, err := backup.ReadHeader(io.TeeReader(resp.Body, cw))
	if err != nil {
		return nil, fmt.Errorf("api: GET /v1/backup: %w", err)
	}
	if _, err := io.Copy(cw, backup.NewReader(resp.Body, h)); err != nil {
		return nil, fmt.Errorf("api: GET /v1/backup: %w", err)
	}
	return &BackupInfo{ClusterID: h.ClusterID, NodeID: h.NodeID, Index: h.Index, Created: h.Created, Size: cw.n}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the whole state of the cluster with the backup read
// from r. It is meant for a fresh cluster, started with the root key of
// the backup: it asks a node for the members, and sends the backup to the
// leader's API address (a restore is made by the leader), where it is
// checked before anything changes:
//   - a backup made under another root key is refused with a 400 that says
//     so;
//   - a damaged or truncated backup with a 400;
//   - a cluster that holds anything besides the empty default enclave with
//     a 409, unless opts.Force.
//
// The restored state keeps this cluster's id; every node installs it.
// Restores are not bounded by Config.Timeout: bound them with ctx. Only a
// cluster admin may restore; anyone else gets ErrNotAllowed.
func (c *Client) Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (*RestoreResponse, error) {
	target, err := c.leaderEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	u := target + "/v1/restore"
	if opts.Force {
		u += "?force=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, io.NopCloser(r))
	if err != nil {
		return nil, fmt.Errorf("api: POST /v1/restore: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	// A refusal that needs no body (not an admin, not the leader, not
	// fresh) comes before the backup is sent.
	req.Header.Set("Expect", "100-continue")
	resp, err := c.http.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("api: POST /v1/restore: %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return nil, fmt.Errorf("api: POST /v1/restore: %s: read answer: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, decodeError(resp.StatusCode, body)
	}
	var v RestoreResponse
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("api: POST /v1/restore: decode answer: %w", err)
	}
	return &v, nil
}

// leaderEndpoint returns the URL of the leader's client API, as the
// members list reports it, with the scheme of the client's endpoints.
func (c *Client) leaderEndpoint(ctx context.Context) (string, error) {
	members, err := c.ClusterMembers(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range members.Members {
		if m.Leader && m.APIAddress != "" {
			scheme, _, _ := strings.Cut(c.endpoints[0], "://")
			return scheme + "://" + m.APIAddress, nil
		}
	}
	return "", fmt.Errorf("api: POST /v1/restore: %w: the members list names no leader with an API address", ErrNoLeader)
}
