package main

import (
	"fmt"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, (*cli).clusterCommand)
}

func (c *cli) clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "List, add and remove the nodes of the cluster, and show its health",
		Long: `List the members of the cluster, show their health and the findings
about their certificates ("status"), add a node and remove one.

The commands ask any node named by --server (or MINKMS_SERVER): a change is
made by the leader whichever member is asked. They need a cluster admin
API key. The exception is recover, the last resort for a cluster that lost
its quorum for good: it works offline, on the data directory of a stopped
node.

A new node joins as a non-voter: it receives the replicated state but does
not count for the quorum. Once it has caught up with the leader it is
promoted to a voter by itself; "minkms cluster members" shows the change.
So adding a node never makes the cluster wait for one that is still
copying the state.

Keep an odd number of voters, three or five. A cluster stays available as
long as a majority of its voters is: two of three, three of five.`,
		Example: `  minkms cluster members
  minkms cluster status --check
  minkms cluster add-node n4.kms.example.net:7374
  minkms cluster remove-node n2
  minkms cluster recover --config /etc/minkms/minkms.yaml --member n1=n1.kms.example.net:7374`,
	}
	cmd.AddCommand(c.clusterMembers(), c.clusterStatus(), c.clusterAddNode(), c.clusterRemoveNode(), c.clusterRecover())
	return cmd
}

func (c *cli) clusterMembers() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"ls"},
		Short:   "List the members of the cluster",
		Long: `List the members of the cluster: the node id, the peer address the other
nodes dial, the address of its client API ("-" if the node has not reported
it), its suffrage, and whether it is the leader or a follower now.

A "nonvoter" is a node that was added and is still catching up with the
leader; it becomes a "voter" by itself once it has.`,
		Example: `  minkms cluster members
  minkms cluster members --json`,
		Args: cobra.NoArgs,
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		members, err := client.ClusterMembers(cmd.Context())
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, members)
		}
		t := newTable(c.stdout, "ID", "PEER ADDRESS", "API ADDRESS", "SUFFRAGE", "ROLE")
		for _, m := range members.Members {
			role := "follower"
			if m.Leader {
				role = "leader"
			}
			t.row(m.ID, m.PeerAddress, orDash(m.APIAddress), m.Suffrage, role)
		}
		return t.flush()
	}
	return cmd
}

func (c *cli) clusterAddNode() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add-node HOST:PORT",
		Short: "Add a node to the cluster",
		Long: `Add the node whose inter-node listener is at HOST:PORT (its
cluster.advertise_peer, port 7374 by default) to the cluster.

The node must be running and must not belong to a cluster yet. Before it is
added, the leader checks it over the inter-node port: it must hold the
cluster's root key, present a certificate from the cluster's CA that names
HOST, and have the same cluster admins. A node that fails a check is
refused, and the error says which.

The node joins as a non-voter and is promoted to a voter by itself once it
has caught up with the leader; "minkms cluster members" shows when.`,
		Example: `  minkms cluster add-node n4.kms.example.net:7374
  minkms cluster add-node 10.0.0.14:7374 --json`,
		Args: cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		m, err := client.AddNode(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if out.json {
			return writeJSON(c.stdout, m)
		}
		if m.Suffrage == api.SuffrageNonvoter {
			_, err = fmt.Fprintf(c.stdout, "Added node %s (%s) as a non-voter; it becomes a voter once it has caught up\n", m.ID, m.PeerAddress)
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "Added node %s (%s) as a %s\n", m.ID, m.PeerAddress, m.Suffrage)
		return err
	}
	return cmd
}

func (c *cli) clusterRemoveNode() *cobra.Command {
	return &cobra.Command{
		Use:   "remove-node ID",
		Short: "Remove a node from the cluster",
		Long: `Remove the member with node id ID from the cluster.

The node need not be running: remove a node that died for good so that its
vote stops counting for the quorum, then add a fresh one. Removing a node
shrinks the quorum too, so a three-node cluster that loses one and removes
it keeps serving with two (and survives no further loss until a node is
added back).

Removal needs a leader. A cluster that lost a majority of its voters for
good has none: that case is for 'minkms cluster recover', run offline on
the surviving nodes.`,
		Example: `  minkms cluster remove-node n2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client(cmd)
			if err != nil {
				return err
			}
			if err := client.RemoveNode(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Removed node %s\n", args[0])
			return err
		},
	}
}
