package main

import (
	"context"

	"github.com/minkms/minkms/api"
	"github.com/spf13/cobra"
)

// listing describes an "ls [PREFIX]" command over one kind of name in an
// enclave: keys, identities or policies.
type listing struct {
	short, long, example string
	list                 func(e *api.Enclave, ctx context.Context, prefix, continueAt string, limit int) (*api.ListResponse, error)
}

// listIn returns the ls command of l. It follows continue_at until every
// name is listed.
func (c *cli) listIn(enclave enclaveOf, l listing) *cobra.Command {
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
		e, err := c.enclave(cmd, enclave)
		if err != nil {
			return err
		}
		prefix := ""
		if len(args) == 1 {
			prefix = args[0]
		}
		names, err := listAll(cmd.Context(), func(ctx context.Context, continueAt string) (*api.ListResponse, error) {
			return l.list(e, ctx, prefix, continueAt, 0)
		})
		if err != nil {
			return err
		}
		return c.printNames(out, names)
	}
	return cmd
}
