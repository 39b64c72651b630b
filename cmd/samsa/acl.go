package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newACLCmd())
}

// newACLCmd builds `samsa acl`: CreateAcls, DescribeAcls and DeleteAcls, the equivalent of
// kafka-acls --add, --list and --remove (the broker needs authorizer.class.name).
func newACLCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Create, list and delete ACLs (kafka-acls)",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newACLCreateCmd(cf), newACLListCmd(cf), newACLDeleteCmd(cf))
	return cmd
}

func registerACLFlags(fs *pflag.FlagSet, f *cli.ACLFlags) {
	fs.StringSliceVar(&f.Topics, "topic", nil, "topic resources")
	fs.StringSliceVar(&f.Groups, "group", nil, "consumer group resources")
	fs.StringSliceVar(&f.TransactionalIDs, "transactional-id", nil, "transactional id resources")
	fs.BoolVar(&f.Cluster, "cluster", false, "the cluster resource")
	fs.StringSliceVar(&f.AllowPrincipals, "allow-principal", nil, "principals allowed (User:alice)")
	fs.StringSliceVar(&f.DenyPrincipals, "deny-principal", nil, "principals denied")
	fs.StringSliceVar(&f.AllowHosts, "allow-host", nil, "hosts of the allowed principals (default every host, *)")
	fs.StringSliceVar(&f.DenyHosts, "deny-host", nil, "hosts of the denied principals (default every host, *)")
	fs.StringSliceVar(&f.Operations, "operation", nil, "operations: Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All")
	fs.StringVar(&f.Pattern, "resource-pattern-type", "", "literal or prefixed (any or match to list or delete; default literal to create, any otherwise)")
}

func newACLCreateCmd(cf *clientFlags) *cobra.Command {
	var f cli.ACLFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create ACLs: every principal, host, resource and operation given, combined",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.Builder(false)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.CreateACLs(ctx, b)
				if err != nil {
					return cli.ResponseError("create ACLs", "", err, "")
				}
				for _, r := range res {
					if r.Err != nil {
						return cli.ResponseError("create ACL", r.Principal, r.Err, r.ErrMessage)
					}
				}
				for _, r := range res {
					fmt.Fprintf(cmd.OutOrStdout(), "created: %s %s %s from %s on %s %q (%s)\n", r.Permission, r.Principal, r.Operation, r.Host, r.Type, r.Name, r.Pattern)
				}
				return nil
			})
		},
	}
	registerACLFlags(cmd.Flags(), &f)
	return cmd
}

func newACLListCmd(cf *clientFlags) *cobra.Command {
	var f cli.ACLFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the ACLs matching the flags (every ACL without flags)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.Builder(true)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.DescribeACLs(ctx, b)
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							return cli.ResponseError("list ACLs", "", r.Err, r.ErrMessage)
						}
					}
				}
				if err != nil {
					return cli.ResponseError("list ACLs", "", err, "")
				}
				return printACLRows(cmd.OutOrStdout(), cli.DescribedACLRows(res))
			})
		},
	}
	registerACLFlags(cmd.Flags(), &f)
	return cmd
}

func newACLDeleteCmd(cf *clientFlags) *cobra.Command {
	var f cli.ACLFlags
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the ACLs matching the flags (at least one flag)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().NFlag() == 0 {
				return fmt.Errorf("name the ACLs to delete (a resource, principal, operation...)")
			}
			b, err := f.Builder(true)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.DeleteACLs(ctx, b)
				if err == nil {
					for _, r := range res {
						if r.Err != nil {
							return cli.ResponseError("delete ACLs", "", r.Err, r.ErrMessage)
						}
					}
				}
				if err != nil {
					return cli.ResponseError("delete ACLs", "", err, "")
				}
				fmt.Fprintln(cmd.OutOrStdout(), "deleted:")
				return printACLRows(cmd.OutOrStdout(), cli.DeletedACLRows(res))
			})
		},
	}
	registerACLFlags(cmd.Flags(), &f)
	return cmd
}

func printACLRows(w io.Writer, rows []cli.ACLRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Type, r.Name, r.Pattern, r.Principal, r.Host, r.Operation, r.Permission)
	}
	return tw.Flush()
}
