package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/kms"
	"github.com/minkms/minkms/storage"
	"github.com/minkms/minkms/storage/backup"
)

// Backups stream whole state files, far beyond the API's body limit and
// request timeout: the two routes have their own.
const (
	// backupTimeout bounds taking a backup and sending it, or receiving
	// a restore and applying it.
	backupTimeout = 30 * time.Minute
	// MaxRestoreBody is the largest backup POST /v1/restore accepts.
	MaxRestoreBody = 1 << 30
	// restorePath is the route that limitBody leaves to its handler.
	restorePath = "/v1/restore"
)

// backups takes and restores backups of this node's state.
type backups struct {
	db      *storage.DB
	node    *cluster.Node
	dir     string // the data directory, for the temporary files
	nodeID  string
	rootKey func() ([]byte, error)
}

var (
	errBackupUnavailable = &kms.Error{Code: kms.Unavailable, Message: "backups unavailable on this node"}
	errWrongRootKey      = &httpError{http.StatusBadRequest, "the backup was made under another root key than this cluster's: nothing was restored (restore it into a cluster started with the backup's root key)"}
)

// backup answers GET /v1/backup: the header, then the state file. The
// state is first copied to a temporary file in the data directory, so that
// no read transaction stays open while a slow client reads: a long read
// would block the writes that must grow the state file.
func (h *handler) backup(w http.ResponseWriter, r *http.Request) error {
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	b := h.backups
	if b == nil {
		return errBackupUnavailable
	}
	f, err := os.CreateTemp(b.dir, ".backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	digest := sha256.New()
	index, term, size, err := b.db.Copy(io.MultiWriter(f, digest))
	if err != nil {
		return fmt.Errorf("backup: copy the state to %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var head bytes.Buffer
	err = backup.WriteHeader(&head, backup.Header{
		ClusterID:    b.node.ClusterID(),
		NodeID:       b.nodeID,
		RootKeyCheck: hex.EncodeToString(b.db.RootKeyCheckValue()),
		Index:        index,
		Term:         term,
		Created:      time.Now().UTC(),
		StateSize:    size,
		StateSHA256:  hex.EncodeToString(digest.Sum(nil)),
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The server's write timeout is the API's; a backup gets its own.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupTimeout)); err != nil {
		return fmt.Errorf("backup: extend the write deadline: %w", err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(int64(head.Len())+size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head.Bytes()); err == nil {
		_, err = io.Copy(w, f)
	}
	if err != nil {
		// Too late for an error answer: the client sees a short body.
		h.log.WarnContext(r.Context(), "Sending a backup failed", slog.String("request_id", requestID(r.Context())), slog.Any("error", err))
	} else {
		h.log.InfoContext(r.Context(), "Sent a backup of the state",
			slog.String("request_id", requestID(r.Context())), slog.Uint64("index", index), slog.Int64("bytes", int64(head.Len())+size))
	}
	return nil
}

// restore answers POST /v1/restore: on the leader of a fresh cluster (or
// with ?force=true), it replaces the whole state with the backup in the
// body. The backup is received into a temporary file and checked before
// anything changes: its format, its digest, and that its state opens under
// this cluster's root key.
func (h *handler) restore(w http.ResponseWriter, r *http.Request) error {
	force, err := boolParam(r, "force")
	if err != nil {
		return err
	}
	if err := requireClusterAdmin(r); err != nil {
		return err
	}
	b := h.backups
	if b == nil {
		return errBackupUnavailable
	}
	if !b.node.IsLeader() {
		id, _ := b.node.Leader()
		return &httpError{http.StatusConflict, fmt.Sprintf("this node is not the leader: send the restore to the leader (node %q)", id)}
	}
	if !force {
		if err := h.svc.Fresh(r.Context()); err != nil {
			return err
		}
	}

	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(backupTimeout)); err != nil {
		return fmt.Errorf("restore: extend the read deadline: %w", err)
	}
	if err := rc.SetWriteDeadline(time.Now().Add(backupTimeout)); err != nil {
		return fmt.Errorf("restore: extend the write deadline: %w", err)
	}
	body := http.MaxBytesReader(w, r.Body, MaxRestoreBody)
	head, err := backup.ReadHeader(body)
	if err != nil {
		return restoreBodyError(err)
	}
	if !head.SameRootKey(b.db.RootKeyCheckValue()) {
		// Read the rest, so that the client, still sending, gets the answer.
		io.Copy(io.Discard, body)
		return errWrongRootKey
	}
	path, err := b.receive(body, head)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return err
	}
	key, err := b.rootKey()
	if err != nil {
		return fmt.Errorf("restore: %w: %w", ErrRootKey, err)
	}
	err = storage.VerifyFile(key, path)
	clear(key)
	switch {
	case errors.Is(err, storage.ErrWrongRootKey):
		return errWrongRootKey
	case errors.Is(err, storage.ErrSchema):
		return &httpError{http.StatusBadRequest, "invalid backup: its state is not a state file this build reads: " + err.Error()}
	case err != nil:
		return fmt.Errorf("restore: %w", err)
	}

	res, err := b.node.Restore(r.Context(), path)
	if errors.Is(err, cluster.ErrNotLeader) {
		return &httpError{http.StatusConflict, "this node stopped being the leader before the restore: nothing was restored; try again"}
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	h.log.WarnContext(r.Context(), "Restored the state of the whole cluster from a backup",
		slog.String("request_id", requestID(r.Context())),
		slog.String("backup_cluster_id", head.ClusterID), slog.Uint64("backup_index", head.Index),
		slog.Time("backup_created", head.Created), slog.Uint64("index", res.Index))
	writeJSON(w, http.StatusOK, api.RestoreResponse{
		ClusterID:       b.node.ClusterID(),
		Index:           res.Index,
		BackupClusterID: head.ClusterID,
		BackupIndex:     head.Index,
	})
	return nil
}

// receive copies the state that follows head into a temporary file in the
// data directory and returns its name ("" if none was created).
func (b *backups) receive(body io.Reader, head backup.Header) (string, error) {
	f, err := os.CreateTemp(b.dir, ".restore-*")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(f, backup.NewReader(body, head)); err != nil {
		return f.Name(), restoreBodyError(err)
	}
	if err := f.Sync(); err != nil {
		return f.Name(), fmt.Errorf("restore: %w", err)
	}
	return f.Name(), nil
}

// restoreBodyError answers a body that is no backup, too large or cut off.
func restoreBodyError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("backup too large: a restore accepts at most %d bytes", int64(MaxRestoreBody))}
	case errors.Is(err, backup.ErrFormat):
		return &httpError{http.StatusBadRequest, "invalid backup: " + err.Error()}
	}
	return fmt.Errorf("restore: receiving the backup: %w", err)
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "true", "1":
		return true, nil
	case "false", "0", "":
		return false, nil
	default:
		return false, kms.Invalidf("invalid %s=%q: use true or false", name, v)
	}
}
