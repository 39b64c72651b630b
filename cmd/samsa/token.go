package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newTokenCmd())
}

// newTokenCmd builds `samsa token`: delegation tokens (KIP-48; CreateDelegationToken,
// RenewDelegationToken, ExpireDelegationToken, DescribeDelegationToken), the equivalent of
// kafka-delegation-tokens --create, --renew, --expire and --describe.
func newTokenCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, renew, expire and describe delegation tokens (kafka-delegation-tokens)",
		Long: "Delegation tokens (KIP-48) of a broker with delegation.token.secret.key set. Brokers serve\n" +
			"the token requests only on an authenticated channel (SASL, or SSL with a client certificate)\n" +
			"and not to a client that logged in with a token, so give --command-config with such a login.\n" +
			"A client logs in with a token by SCRAM: the token id as the user name, the HMAC (base64) as the\n" +
			"password and tokenauth=\"true\" in its sasl.jaas.config.",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newTokenCreateCmd(cf), newTokenRenewCmd(cf), newTokenExpireCmd(cf), newTokenDescribeCmd(cf))
	return cmd
}

func newTokenCreateCmd(cf *clientFlags) *cobra.Command {
	var maxLife int64
	var renewers []string
	var owner string
	cmd := &cobra.Command{
		Use:   "create [--max-life-time-period MS] [--renewer-principal User:NAME ...] [--owner-principal User:NAME]",
		Short: "Create a delegation token and print its id and HMAC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := kadm.CreateDelegationToken{}
			var err error
			if req.MaxLifetime, err = cli.TokenPeriod("max-life-time-period", maxLife); err != nil {
				return err
			}
			if req.Renewers, err = cli.ParsePrincipals("renewer-principal", renewers); err != nil {
				return err
			}
			if owner != "" {
				p, err := cli.ParsePrincipal(owner)
				if err != nil {
					return fmt.Errorf("--owner-principal: %w", err)
				}
				req.Owner = &p
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				tok, err := adm.CreateDelegationToken(ctx, req)
				if err != nil {
					return cli.ResponseError("create", "delegation token", err, "")
				}
				return printTokens(cmd.OutOrStdout(), kadm.DelegationTokens{tok})
			})
		},
	}
	cmd.Flags().Int64Var(&maxLife, "max-life-time-period", -1, "the token's max life in milliseconds; -1: the broker's delegation.token.max.lifetime.ms (which also caps it)")
	cmd.Flags().StringArrayVar(&renewers, "renewer-principal", nil, "a principal (User:NAME) that may renew the token besides its owner; repeatable")
	cmd.Flags().StringVar(&owner, "owner-principal", "", "create the token for this owner (User:NAME) instead of the requester (needs CREATE_TOKENS on the owner's user, KIP-373)")
	return cmd
}

// tokenExpiryChange is what tells renew and expire apart: both name a token by its HMAC and
// change its expiry date by a period.
type tokenExpiryChange struct {
	use, short             string
	action, done           string // "renew", "renewed": for the error and the output
	periodFlag, periodHelp string
	// change is kadm.Client's method, as a method expression.
	change func(adm *kadm.Client, ctx context.Context, mac []byte, period time.Duration) (time.Time, error)
}

func newTokenExpiryCmd(cf *clientFlags, c tokenExpiryChange) *cobra.Command {
	var hmac string
	var periodMs int64
	cmd := &cobra.Command{
		Use:   c.use,
		Short: c.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mac, err := cli.ParseHMAC(hmac)
			if err != nil {
				return err
			}
			period, err := cli.TokenPeriod(c.periodFlag, periodMs)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				expiry, err := c.change(adm, ctx, mac, period)
				if err != nil {
					return cli.ResponseError(c.action, "delegation token", err, "")
				}
				fmt.Fprintf(cmd.OutOrStdout(), "delegation token %s: new expiry date %s\n", c.done, cli.TokenTime(expiry))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&hmac, "hmac", "", "the token's HMAC (base64), as token create prints it")
	cmd.Flags().Int64Var(&periodMs, c.periodFlag, -1, c.periodHelp)
	return cmd
}

func newTokenRenewCmd(cf *clientFlags) *cobra.Command {
	return newTokenExpiryCmd(cf, tokenExpiryChange{
		use:        "renew --hmac HMAC [--renew-time-period MS]",
		short:      "Renew a delegation token (its owner or a renewer) and print its new expiry date",
		action:     "renew",
		done:       "renewed",
		periodFlag: "renew-time-period",
		periodHelp: "renew for this many milliseconds from now; -1: the broker's delegation.token.expiry.time.ms (which also caps it)",
		change:     (*kadm.Client).RenewDelegationToken,
	})
}

func newTokenExpireCmd(cf *clientFlags) *cobra.Command {
	return newTokenExpiryCmd(cf, tokenExpiryChange{
		use:        "expire --hmac HMAC [--expiry-time-period MS]",
		short:      "Expire a delegation token now, or set it to expire after a period, and print its new expiry date",
		action:     "expire",
		done:       "expiry set",
		periodFlag: "expiry-time-period",
		periodHelp: "expire the token this many milliseconds from now (at most its max date); -1: at once",
		change:     (*kadm.Client).ExpireDelegationToken,
	})
}

func newTokenDescribeCmd(cf *clientFlags) *cobra.Command {
	var owners []string
	cmd := &cobra.Command{
		Use:   "describe [--owner-principal User:NAME ...]",
		Short: "List the delegation tokens the requester may see (of every owner, or of those named)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := cli.ParsePrincipals("owner-principal", owners)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				tokens, err := adm.DescribeDelegationTokens(ctx, ps...)
				if err != nil {
					return cli.ResponseError("describe", "delegation tokens", err, "")
				}
				return printTokens(cmd.OutOrStdout(), tokens)
			})
		},
	}
	cmd.Flags().StringArrayVar(&owners, "owner-principal", nil, "only the tokens of this owner (User:NAME); repeatable")
	return cmd
}

// printTokens prints tokens as a table with kafka-delegation-tokens' columns.
func printTokens(w io.Writer, tokens kadm.DelegationTokens) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKENID\tHMAC\tOWNER\tREQUESTER\tRENEWERS\tISSUEDATE\tEXPIRYDATE\tMAXDATE")
	for _, r := range cli.TokenRows(tokens) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.TokenID, r.HMAC, r.Owner, r.Requester, r.Renewers, r.Issued, r.Expires, r.Max)
	}
	return tw.Flush()
}
