package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/minkms/minkms/api"
)

func init() {
	extraCommands = append(extraCommands, (*cli).backupCommand, (*cli).restoreCommand)
}

func (c *cli) backupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a backup of the whole cluster state to FILE",
		Long: `Write a backup of the whole state of the cluster to FILE: every enclave,
key, identity and policy. The values in it are sealed under the cluster's
root key, as on the nodes' disks: the backup is useless without the root
key, and keep the root key apart from it. FILE is written atomically (a
temporary file renamed into place) with mode 0600.

The first node of --server that answers takes the backup from its own
replica. On a follower that is the state as of the writes it has applied,
which may lag the leader by a heartbeat; --consistent makes the node catch
up with the leader first, so that the backup holds every write
acknowledged before the command started.

A backup restores with 'minkms restore' into a fresh cluster started with
the same root key. Needs a cluster admin API key.`,
		Example: `  minkms backup /var/backups/minkms/$(date +%F).mkb
  minkms backup --consistent --json backup.mkb`,
		Args: cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	consistent := cmd.Flags().Bool("consistent", false, "catch up with the leader before taking the backup")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		path := args[0]
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer os.Remove(tmp.Name()) // a no-op once renamed
		defer tmp.Close()
		info, err := client.Backup(cmd.Context(), tmp, *consistent)
		if err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("backup: write %s: %w", tmp.Name(), err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("backup: write %s: %w", tmp.Name(), err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if out.json {
			return writeJSON(c.stdout, struct {
				File string `json:"file"`
				*api.BackupInfo
			}{path, info})
		}
		_, err = fmt.Fprintf(c.stdout, "Wrote a backup of cluster %s at index %d, taken by node %s at %s, to %s (%d bytes)\n",
			info.ClusterID, info.Index, info.NodeID, info.Created.Local().Format(time.RFC3339), path, info.Size)
		return err
	}
	return cmd
}

func (c *cli) restoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the whole cluster state with a backup",
		Long: `Replace the whole state of the cluster with the backup in FILE, written by
'minkms backup'. Restore into a fresh cluster: one started with the root key
of the backup that holds nothing yet but the empty default enclave. The
cluster keeps its own id; every node installs the restored state.

The backup is sent to the leader, which checks it before anything changes:
a backup made under another root key is refused with that reason, a damaged
or truncated one as invalid, and a cluster that holds keys, enclaves,
identities or policies already is refused unless --force (which replaces
all of it). Needs a cluster admin API key.`,
		Example: `  minkms restore /var/backups/minkms/2025-01-31.mkb
  minkms restore --json backup.mkb`,
		Args: cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	force := cmd.Flags().Bool("force", false, "restore into a cluster that is not fresh, replacing its whole state")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		f, err := os.Open(args[0])
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: no backup at %s", args[0])
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		res, err := client.Restore(cmd.Context(), f, api.RestoreOptions{Force: *force})
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, res)
		}
		_, err = fmt.Fprintf(c.stdout, "Restored the backup of cluster %s (index %d) into cluster %s at index %d\n",
			res.BackupClusterID, res.BackupIndex, res.ClusterID, res.Index)
		return err
	}
	return cmd
}
