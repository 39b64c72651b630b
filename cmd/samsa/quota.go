package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newQuotaCmd())
}

// newQuotaCmd builds `samsa quota`: client quotas (AlterClientQuotas, DescribeClientQuotas),
// the equivalent of kafka-configs --entity-type users/clients/ips with quota keys.
func newQuotaCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Set, list and delete client quotas of users, client ids and ips",
		Long: "Client quotas as kafka-configs sets them: producer_byte_rate, consumer_byte_rate,\n" +
			"request_percentage and controller_mutation_rate of a user, a client id or both;\n" +
			"connection_creation_rate of an ip. --user-default (and the others) name the default entity.",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newQuotaSetCmd(cf), newQuotaListCmd(cf), newQuotaDeleteCmd(cf))
	return cmd
}

func registerQuotaEntityFlags(fs *pflag.FlagSet, f *cli.QuotaEntityFlags) {
	fs.StringVar(&f.User, "user", "", "the user (principal name) the quotas are of")
	fs.BoolVar(&f.UserDefault, "user-default", false, "the default user")
	fs.StringVar(&f.ClientID, "client-id", "", "the client id the quotas are of")
	fs.BoolVar(&f.ClientIDDefault, "client-id-default", false, "the default client id")
	fs.StringVar(&f.IP, "ip", "", "the client address the quota is of (connection_creation_rate)")
	fs.BoolVar(&f.IPDefault, "ip-default", false, "the default ip")
}

// alterQuotas sends one alteration and turns a refused entry into an error.
func alterQuotas(ctx context.Context, adm *kadm.Client, action string, entry kadm.AlterClientQuotaEntry) error {
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{entry})
	msg := ""
	for _, r := range res {
		if err == nil && r.Err != nil {
			err, msg = r.Err, r.ErrMessage
		}
	}
	if err != nil {
		return cli.ResponseError(action, cli.QuotaEntityString(entry.Entity), err, msg)
	}
	return nil
}

func newQuotaSetCmd(cf *clientFlags) *cobra.Command {
	var ef cli.QuotaEntityFlags
	var configs []string
	cmd := &cobra.Command{
		Use:   "set --user NAME|--client-id NAME|--ip ADDR ... --add-config KEY=VALUE[,KEY=VALUE...]",
		Short: "Set client quotas of an entity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entity, err := ef.Entity()
			if err != nil {
				return err
			}
			ops, err := cli.ParseQuotaConfigs(configs)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				if err := alterQuotas(ctx, adm, "set quotas of", kadm.AlterClientQuotaEntry{Entity: entity, Ops: ops}); err != nil {
					return err
				}
				for _, op := range ops {
					fmt.Fprintf(cmd.OutOrStdout(), "quota %s of %s set to %s\n", op.Key, cli.QuotaEntityString(entity),
						strconv.FormatFloat(op.Value, 'f', -1, 64))
				}
				return nil
			})
		},
	}
	registerQuotaEntityFlags(cmd.Flags(), &ef)
	cmd.Flags().StringArrayVar(&configs, "add-config", nil, "quotas to set, KEY=VALUE separated by commas")
	return cmd
}

func newQuotaListCmd(cf *clientFlags) *cobra.Command {
	var ef cli.QuotaEntityFlags
	var strict bool
	cmd := &cobra.Command{
		Use:   "list [--user NAME|--user-default] [--client-id NAME|--client-id-default] [--ip ADDR|--ip-default]",
		Short: "List client quotas (every entity, or those matching the flags)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := ef.Filter()
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				described, err := adm.DescribeClientQuotas(ctx, strict, filter)
				if err != nil {
					return cli.ResponseError("list quotas", "", err, "")
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ENTITY\tQUOTA\tVALUE")
				for _, r := range cli.QuotaRows(described) {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Entity, r.Key, r.Value)
				}
				return tw.Flush()
			})
		},
	}
	registerQuotaEntityFlags(cmd.Flags(), &ef)
	cmd.Flags().BoolVar(&strict, "strict", false, "only entities made of exactly the types given (not, say, a user's client ids)")
	return cmd
}

func newQuotaDeleteCmd(cf *clientFlags) *cobra.Command {
	var ef cli.QuotaEntityFlags
	var keys []string
	cmd := &cobra.Command{
		Use:   "delete --user NAME|--client-id NAME|--ip ADDR ... [--delete-config KEY[,KEY...]]",
		Short: "Delete client quotas of an entity (every one, or those named)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entity, err := ef.Entity()
			if err != nil {
				return err
			}
			filter, err := ef.Filter()
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				if len(keys) == 0 {
					described, err := adm.DescribeClientQuotas(ctx, true, filter)
					if err != nil {
						return cli.ResponseError("delete quotas of", cli.QuotaEntityString(entity), err, "")
					}
					if keys = cli.QuotaKeys(described, entity); len(keys) == 0 {
						return fmt.Errorf("delete quotas of %s: it has none", cli.QuotaEntityString(entity))
					}
				}
				entry := kadm.AlterClientQuotaEntry{Entity: entity}
				for _, k := range keys {
					entry.Ops = append(entry.Ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
				}
				if err := alterQuotas(ctx, adm, "delete quotas of", entry); err != nil {
					return err
				}
				for _, k := range keys {
					fmt.Fprintf(cmd.OutOrStdout(), "quota %s of %s deleted\n", k, cli.QuotaEntityString(entity))
				}
				return nil
			})
		},
	}
	registerQuotaEntityFlags(cmd.Flags(), &ef)
	cmd.Flags().StringSliceVar(&keys, "delete-config", nil, "only these quota keys (default: every quota of the entity)")
	return cmd
}
