package main

// admin check reads the files of a stopped node; it needs the storage
// package, not the SDK.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/minkms/minkms/server"
	"github.com/minkms/minkms/storage"
)

func init() {
	extraCommands = append(extraCommands, (*cli).adminCommand)
}

func (c *cli) adminCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Inspect a node's data directory offline",
		Long: `Commands that work on a node's files rather than through its API. Run them on
the node's machine, as the user the node runs as.`,
		Example: `  minkms admin check /var/lib/minkms`,
	}
	cmd.AddCommand(c.adminCheck())
	return cmd
}

// checkFinding is one file that admin check looked at.
type checkFinding struct {
	File   string `json:"file"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

var errDamaged = errors.New("the data directory is damaged")

func (c *cli) adminCheck() *cobra.Command {
	var (
		file string
		here bool
	)
	cmd := &cobra.Command{
		Use:   "check [DATA_DIR]",
		Short: "Check the consistency of a node's state file, raft log and snapshots",
		Long: `Check every page of the node's files without changing them: the state file
(state.db), the raft log (raft/raft.db) and each raft snapshot (meta.json and
state.bin). It exits 0 when all are intact and 1, naming each damaged file,
otherwise.

A node runs this check by itself, in a process of its own, when it starts
after it did not stop cleanly (a crash, a kill -9, a power loss). Run it by
hand after a disk problem, or before you copy a data directory.

What to do about damage (docs/deploy.md, "Troubleshooting"):
  state.db damaged   move it aside; the node rebuilds it from its raft log and
                     snapshots when it starts
  a snapshot damaged move its directory out of raft/snapshots
  raft.db damaged    remove the node from the cluster (minkms cluster
                     remove-node), empty its data directory, let it join again

--file checks one file (a bbolt file: a state file, a raft log, a
snapshot's state.bin) instead of a data directory.`,
		Example: `  minkms admin check /var/lib/minkms
  minkms admin check --file /var/lib/minkms/state.db --json`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.Flags().StringVar(&file, "file", "", "check this one file instead of a data directory")
	// --this-process runs the check of --file here; without it every file
	// is checked by a child process, which may crash on the damage.
	cmd.Flags().BoolVar(&here, "this-process", false, "")
	cmd.Flags().MarkHidden("this-process")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if here {
			if file == "" {
				return errors.New("--this-process needs --file")
			}
			f := checkFinding{File: file, OK: true}
			if err := storage.CheckFile(file); err != nil {
				f = checkFinding{File: file, Reason: err.Error()}
			}
			return writeJSON(c.stdout, []checkFinding{f})
		}
		var findings []checkFinding
		switch {
		case file != "" && len(args) > 0:
			return errors.New("give a data directory or --file, not both")
		case file != "":
			findings = []checkFinding{checkOne(cmd.Context(), file)}
		case len(args) == 1:
			var err error
			if findings, err = checkDataDir(cmd.Context(), args[0]); err != nil {
				return err
			}
		default:
			return errors.New("name the data directory to check (or --file)")
		}
		if out.json {
			if err := writeJSON(c.stdout, findings); err != nil {
				return err
			}
		} else {
			for _, f := range findings {
				if f.OK {
					fmt.Fprintf(c.stdout, "ok       %s\n", f.File)
				} else {
					fmt.Fprintf(c.stdout, "DAMAGED  %s: %s\n", f.File, f.Reason)
				}
			}
		}
		for _, f := range findings {
			if !f.OK {
				return errDamaged
			}
		}
		return nil
	}
	return cmd
}

// checkOne checks one bbolt file in a child process.
func checkOne(ctx context.Context, path string) checkFinding {
	if err := checkInChild(ctx, path); err != nil {
		return checkFinding{File: path, Reason: err.Error()}
	}
	return checkFinding{File: path, OK: true}
}

// checkDataDir checks every file of a data directory that exists.
func checkDataDir(ctx context.Context, dir string) ([]checkFinding, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (use --file for one file)", dir)
	}
	var out []checkFinding
	for _, p := range []string{filepath.Join(dir, server.StateFile), filepath.Join(dir, "raft", "raft.db")} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, checkOne(ctx, p))
		}
	}
	snaps, _ := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
	for _, e := range snaps {
		if !e.IsDir() {
			continue
		}
		sd := filepath.Join(dir, "raft", "snapshots", e.Name())
		meta := filepath.Join(sd, "meta.json")
		b, err := os.ReadFile(meta)
		var m struct{ ID string }
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			out = append(out, checkFinding{File: meta, Reason: err.Error()})
			continue
		}
		out = append(out, checkFinding{File: meta, OK: true}, checkOne(ctx, filepath.Join(sd, "state.bin")))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no minkms files", dir)
	}
	return out, nil
}

// checkStateFileInChild is the node's check of its state file at start
// after an unclean stop: in a process of its own, so that a checker that
// panics or faults on damaged pages cannot take the node down with it.
func checkStateFileInChild(ctx context.Context, path string) error { return checkInChild(ctx, path) }

// checkInChild checks one bbolt file in a child process (this binary's
// hidden `admin check --this-process --file`); a child that crashes has
// found damage too.
func checkInChild(ctx context.Context, path string) error {
	// A damaged file can also make the checker loop: give it time for the
	// file's size at a slow 10 MiB/s, plus 10s, and call what is left damaged.
	limit := 10 * time.Second
	if fi, err := os.Stat(path); err == nil {
		limit += time.Duration(fi.Size()/(10<<20)) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to run the state check: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "admin", "check", "--this-process", "--file", path)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	stdout, err := cmd.Output()
	var findings []checkFinding
	if jerr := json.Unmarshal(stdout, &findings); jerr == nil && len(findings) == 1 {
		if findings[0].OK {
			return nil
		}
		return fmt.Errorf("%w: %s", storage.ErrCorrupt, findings[0].Reason)
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w: %s: the consistency check did not finish within %s", storage.ErrCorrupt, path, limit)
	}
	if err != nil {
		var stderr string
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
			if i := strings.IndexByte(stderr, '\n'); i > 0 {
				stderr = stderr[:i]
			}
		}
		return fmt.Errorf("%w: %s: the consistency check crashed on it (%v): %s", storage.ErrCorrupt, path, err, stderr)
	}
	return fmt.Errorf("the consistency check of %s answered nothing readable", path)
}
