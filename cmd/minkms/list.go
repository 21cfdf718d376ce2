package main

import (
	"context"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

// listFunc is one page of an SDK listing, as Client.ListEnclaves and
// Enclave.ListKeys are.
type listFunc func(ctx context.Context, prefix, continueAt string, limit int) (*api.ListResponse, error)

// listing describes an "ls [PREFIX]" command: its texts and where its names
// come from, given the command's flags.
type listing struct {
	short, long, example string
	source               func(cmd *cobra.Command) (listFunc, error)
}

// listCommand returns the ls command of l. It follows continue_at until
// every name is listed.
func (c *cli) listCommand(l listing) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls [PREFIX]",
		Aliases: []string{"list"},
		Short:   l.short,
		Long:    l.long,
		Example: l.example,
		Args:    cobra.MaximumNArgs(1),
	}
	out := jsonFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		list, err := l.source(cmd)
		if err != nil {
			return err
		}
		prefix := ""
		if len(args) == 1 {
			prefix = args[0]
		}
		names, err := listAll(cmd.Context(), func(ctx context.Context, continueAt string) (*api.ListResponse, error) {
			return list(ctx, prefix, continueAt, 0)
		})
		if err != nil {
			return err
		}
		return c.printNames(out, names)
	}
	return cmd
}

// inEnclave is the source of a listing of the enclave the command acts in,
// by an Enclave method such as (*api.Enclave).ListKeys.
func (c *cli) inEnclave(enclave enclaveOf, list func(e *api.Enclave, ctx context.Context, prefix, continueAt string, limit int) (*api.ListResponse, error)) func(*cobra.Command) (listFunc, error) {
	return func(cmd *cobra.Command) (listFunc, error) {
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, prefix, continueAt string, limit int) (*api.ListResponse, error) {
			return list(e, ctx, prefix, continueAt, limit)
		}, nil
	}
}
