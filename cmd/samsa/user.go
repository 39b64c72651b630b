package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newUserCmd())
}

// newUserCmd builds `samsa user`: SCRAM credentials (AlterUserScramCredentials,
// DescribeUserScramCredentials), the equivalent of kafka-configs --entity-type users.
func newUserCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete the SCRAM credentials of SASL users",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newUserCreateCmd(cf), newUserListCmd(cf), newUserDeleteCmd(cf))
	return cmd
}

func newUserCreateCmd(cf *clientFlags) *cobra.Command {
	var password string
	var passwordStdin bool
	var mechanisms []string
	var iterations int32
	cmd := &cobra.Command{
		Use:   "create USER",
		Short: "Create a user's SCRAM credentials, or change its password",
		Long: "Create (or replace) a user's SCRAM credentials for each --mechanism. The password is\n" +
			"salted and hashed by this command (as kafka-configs does); the broker stores only the salt,\n" +
			"the iterations and the keys derived from them, never the password.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mechs, err := cli.ScramMechanisms(mechanisms)
			if err != nil {
				return err
			}
			if passwordStdin {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				if err != nil {
					return fmt.Errorf("reading the password: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if password == "" {
				return errors.New("a password is needed: --password or --password-stdin")
			}
			var ups []kadm.UpsertSCRAM
			for _, m := range mechs {
				ups = append(ups, kadm.UpsertSCRAM{User: args[0], Mechanism: m, Iterations: iterations, Password: password})
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				res, err := adm.AlterUserSCRAMs(ctx, nil, ups)
				if err == nil {
					err = res.Error()
				}
				if err != nil {
					return cli.ResponseError("create user", args[0], err, res[args[0]].ErrMessage)
				}
				for _, m := range mechs {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s credential set (%d iterations)\n", args[0], m, iterations)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "the user's password (visible in the process list; prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to create credentials for")
	cmd.Flags().Int32Var(&iterations, "iterations", 8192, "SCRAM iterations (4096 to 16384)")
	return cmd
}

func newUserListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list [USER...]",
		Short: "List users with SCRAM credentials, their mechanisms and iterations",
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				described, err := adm.DescribeUserSCRAMs(ctx, args...)
				if err == nil {
					err = described.Error()
				}
				if err != nil {
					msg := ""
					described.EachError(func(d kadm.DescribedUserSCRAM) { msg = d.ErrMessage })
					return cli.ResponseError("list users", strings.Join(args, ","), err, msg)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
				for _, r := range cli.UserRows(described) {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", r.User, r.Mechanism, r.Iterations)
				}
				return tw.Flush()
			})
		},
	}
}

func newUserDeleteCmd(cf *clientFlags) *cobra.Command {
	var mechanisms []string
	cmd := &cobra.Command{
		Use:   "delete USER",
		Short: "Delete a user's SCRAM credentials (every mechanism, or those named)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mechs, err := cli.ScramMechanisms(mechanisms)
			if err != nil {
				return err
			}
			user := args[0]
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				if len(mechs) == 0 {
					described, err := adm.DescribeUserSCRAMs(ctx, user)
					if err == nil {
						err = described.Error()
					}
					if err != nil {
						return cli.ResponseError("delete user", user, err, described[user].ErrMessage)
					}
					for _, ci := range described[user].CredInfos {
						mechs = append(mechs, ci.Mechanism)
					}
				}
				var dels []kadm.DeleteSCRAM
				for _, m := range mechs {
					dels = append(dels, kadm.DeleteSCRAM{User: user, Mechanism: m})
				}
				res, err := adm.AlterUserSCRAMs(ctx, dels, nil)
				if err == nil {
					err = res.Error()
				}
				if err != nil {
					return cli.ResponseError("delete user", user, err, res[user].ErrMessage)
				}
				for _, m := range mechs {
					fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s credential deleted\n", user, m)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", nil, "only these SCRAM mechanisms (default: every one the user has)")
	return cmd
}
