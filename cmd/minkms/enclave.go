package main

import (
	"fmt"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

func (c *cli) enclaveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enclave",
		Short: "Create, list, inspect and delete enclaves",
		Long: `An enclave is a namespace of keys, identities and policies: a tenant.
Creating and deleting enclaves needs a cluster admin identity.`,
		Example: `  minkms enclave create tenant-1
  minkms enclave ls`,
	}
	cmd.AddCommand(c.enclaveCreate(), c.listCommand(listing{
		short:   "List enclaves",
		long:    `List the names of all enclaves, or of those that start with PREFIX, in order.`,
		example: "  minkms enclave ls\n  minkms enclave ls tenant- --json",
		source: func(cmd *cobra.Command) (listFunc, error) {
			client, err := c.client(cmd)
			if err != nil {
				return nil, err
			}
			return client.ListEnclaves, nil
		},
	}), c.enclaveStat(), c.enclaveRemove())
	return cmd
}

func (c *cli) printEnclave(out *output, verb string, info *api.EnclaveInfo) error {
	if out.json {
		return writeJSON(c.stdout, info)
	}
	if verb != "" {
		_, err := fmt.Fprintf(c.stdout, "%s enclave %s\n", verb, info.Name)
		return err
	}
	_, err := fmt.Fprintf(c.stdout, "Name:     %s\nCreated:  %s\n",
		info.Name, createdBy(info.CreatedAt, info.CreatedBy))
	return err
}

func (c *cli) enclaveCreate() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create an enclave",
		Long:    `Create an empty enclave. It fails if an enclave of that name exists.`,
		Example: `  minkms enclave create tenant-1`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		info, err := client.CreateEnclave(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return c.printEnclave(out, "Created", info)
	}
	return cmd
}

func (c *cli) enclaveStat() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stat NAME",
		Aliases: []string{"describe"},
		Short:   "Show an enclave",
		Long:    `Show when and by whom an enclave was created.`,
		Example: `  minkms enclave stat tenant-1`,
		Args:    cobra.ExactArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, err := c.client(cmd)
		if err != nil {
			return err
		}
		info, err := client.DescribeEnclave(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return c.printEnclave(out, "", info)
	}
	return cmd
}

func (c *cli) enclaveRemove() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete an enclave",
		Long: `Delete an enclave with all its keys, identities and policies. What its keys
encrypted can never be decrypted again.`,
		Example: `  minkms enclave rm tenant-1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := c.client(cmd)
			if err != nil {
				return err
			}
			if err := client.DeleteEnclave(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.stdout, "Deleted enclave %s\n", args[0])
			return err
		},
	}
}
