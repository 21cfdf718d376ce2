package main

// cluster recover works on a stopped node's data directory, so it needs the
// server and cluster packages, not the client SDK.

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/minkms/minkms/api"
	"github.com/minkms/minkms/cluster"
	"github.com/minkms/minkms/server"
	"github.com/spf13/cobra"
)

func (c *cli) clusterRecover() *cobra.Command {
	var (
		configFile string
		members    []string
	)
	cmd := &cobra.Command{
		Use:   "recover --config FILE --member ID=HOST:PORT [--member ID=HOST:PORT ...]",
		Short: "Rewrite the membership of a cluster that lost its quorum (offline, last resort)",
		Long: `Rewrite the raft configuration in the data directory of a stopped node,
for a cluster that lost a majority of its voters for good (two of three
machines destroyed): without a majority there is no leader, so neither
writes nor remove-node work. It is the last resort, like Consul's
peers.json: writes that only the lost nodes had are lost.

It works offline, on the node's data directory as its config file (--config)
names it: the node must be stopped ("the node is running; stop it first"
otherwise). Each --member is a node id and its peer address
(cluster.advertise_peer); list the surviving nodes only, this one included
at its advertise_peer.

  1. Stop minkms on every surviving node.
  2. On each survivor, run recover with the same --member list.
  3. Start the survivors; they elect a leader among themselves.
  4. Add fresh nodes back with 'minkms cluster add-node'.

Never run it while any node of the cluster runs, and never with different
lists on different nodes: either can make two clusters that each believe
they are the one. Run it as the user the node runs as, so that the files
it rewrites keep their owner. Running it again with the same list changes
nothing.`,
		Example: `  minkms cluster recover --config /etc/minkms/minkms.yaml --member n1=kms-1.example.net:7374
  minkms cluster recover --config /etc/minkms/minkms.yaml \
      --member n1=kms-1.example.net:7374 --member n3=kms-3.example.net:7374`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "the stopped node's YAML config file")
	f.StringArrayVar(&members, "member", nil, "a member of the recovered cluster, ID=HOST:PORT (its node id and advertise_peer); repeat for each survivor")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("member")
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var list []cluster.Member
		for _, s := range members {
			m, err := cluster.ParseMember(s)
			if err != nil {
				return err
			}
			list = append(list, m)
		}
		res, err := recoverNode(configFile, list, server.NewLogger(c.stderr, server.LogConfig{Level: slog.LevelWarn}))
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, recoveryJSON{Old: membersJSON(res.Old), New: membersJSON(res.New)})
		}
		return c.printRecovery(res)
	}
	return cmd
}

// recoveryResult is what recoverNode did, to which node.
type recoveryResult struct {
	cluster.Recovery
	NodeID  string
	DataDir string
}

// recoverNode opens the stopped node's state as the node would and
// rewrites its raft configuration to members.
func recoverNode(configFile string, members []cluster.Member, logger *slog.Logger) (recoveryResult, error) {
	cfg, err := server.LoadConfig(configFile)
	if err != nil {
		return recoveryResult{}, err
	}
	cc := cfg.Cluster
	if _, port, err := net.SplitHostPort(cc.AdvertisePeer); err != nil || port == "0" {
		return recoveryResult{}, fmt.Errorf("%w: %s: cluster.advertise_peer %q is not the fixed host:port that peers dial; recover needs it", cluster.ErrRecover, configFile, cc.AdvertisePeer)
	}
	db, err := server.OpenOffline(cfg)
	if err != nil {
		return recoveryResult{}, err
	}
	res, err := cluster.Recover(cluster.RecoverConfig{
		NodeID:   cc.NodeID,
		PeerAddr: cc.AdvertisePeer,
		DataDir:  cfg.DataDir,
		Store:    db,
		Members:  members,
		Timing:   cluster.Timing(cc.Raft),
		Logger:   logger,
	})
	if cerr := db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing the state: %w", cerr)
	}
	if err != nil {
		return recoveryResult{}, err
	}
	return recoveryResult{Recovery: res, NodeID: cc.NodeID, DataDir: cfg.DataDir}, nil
}

func (c *cli) printRecovery(res recoveryResult) error {
	s := styleFor(c.stdout)
	var b strings.Builder
	if res.Changed() {
		fmt.Fprintf(&b, "%s\n", s.bold(fmt.Sprintf("Recovered the raft configuration of node %s (%s)", res.NodeID, res.DataDir)))
	} else {
		fmt.Fprintf(&b, "%s\n", s.bold(fmt.Sprintf("Node %s (%s) has this configuration already; nothing changed", res.NodeID, res.DataDir)))
	}
	fmt.Fprintf(&b, "  before: %s\n", formatMembers(res.Old))
	fmt.Fprintf(&b, "  after:  %s\n\n", formatMembers(res.New))
	var others []string
	for _, m := range res.New {
		if m.ID != res.NodeID {
			others = append(others, m.ID)
		}
	}
	fmt.Fprintf(&b, "Next:\n")
	step := 1
	if len(others) > 0 {
		fmt.Fprintf(&b, "  %d. Run the same command, with the same --member list, on %s, while every node is stopped.\n", step, strings.Join(others, ", "))
		step++
	}
	if len(res.New) > 1 {
		fmt.Fprintf(&b, "  %d. Start the nodes (systemctl start minkms); they elect a leader among themselves.\n", step)
	} else {
		fmt.Fprintf(&b, "  %d. Start the node (systemctl start minkms); it elects itself leader.\n", step)
	}
	step++
	fmt.Fprintf(&b, "  %d. Check with 'minkms cluster members', then add fresh nodes with 'minkms cluster add-node HOST:PORT'.\n", step)
	_, err := fmt.Fprint(c.stdout, b.String())
	return err
}

func formatMembers(ms []cluster.Member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s=%s (%s)", m.ID, m.PeerAddr, suffrage(m))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, ", ")
}

func suffrage(m cluster.Member) string {
	if m.Voter {
		return api.SuffrageVoter
	}
	return api.SuffrageNonvoter
}

// recoveryJSON is what cluster recover --json prints.
type recoveryJSON struct {
	Old []recoveryMemberJSON `json:"old"`
	New []recoveryMemberJSON `json:"new"`
}

type recoveryMemberJSON struct {
	ID          string `json:"id"`
	PeerAddress string `json:"peer_address"`
	Suffrage    string `json:"suffrage"`
}

func membersJSON(ms []cluster.Member) []recoveryMemberJSON {
	out := make([]recoveryMemberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, recoveryMemberJSON{ID: m.ID, PeerAddress: m.PeerAddr, Suffrage: suffrage(m)})
	}
	return out
}
