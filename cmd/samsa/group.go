package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newGroupCmd())
}

// newGroupCmd builds `samsa group` and its subcommands, with fresh flag variables per call.
func newGroupCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe (with lag), delete consumer groups and reset or delete their offsets",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newGroupListCmd(cf), newGroupDescribeCmd(cf), newGroupDeleteCmd(cf),
		newGroupResetOffsetsCmd(cf), newGroupDeleteOffsetsCmd(cf))
	return cmd
}

func newGroupListCmd(cf *clientFlags) *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups with their state and protocol type",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				groups, err := adm.ListGroups(ctx, states...)
				if err != nil {
					return cli.ResponseError("list groups", "", err, "")
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
				for _, g := range groups.Sorted() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, g.State, orDash(g.ProtocolType), g.Coordinator)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only groups in these states (Empty, Stable, PreparingRebalance, ...)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newGroupDescribeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show members, assignments, committed offsets, log end offsets and lag",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				lags, err := adm.Lag(ctx, args...)
				if err != nil {
					return cli.ResponseError("describe group", "", err, "")
				}
				kip848 := describeKIP848(ctx, adm, lags)
				var errs []error
				for i, name := range args {
					g, ok := lags[name]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("group %s: no answer", name))
						continue
					case errors.Is(g.DescribeErr, kerr.GroupIDNotFound):
						// DescribeGroups v6+ (KIP-1043); older versions answer Dead.
						errs = append(errs, fmt.Errorf("group %q does not exist", name))
						continue
					case g.Error() != nil:
						errs = append(errs, cli.ResponseError("describe group", name, g.Error(), ""))
						continue
					case g.State == "Dead":
						errs = append(errs, fmt.Errorf("group %q does not exist", name))
						continue
					}
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					protocol := cli.GroupProtocol{Type: g.ProtocolType, Protocol: g.Protocol}
					if cg, ok := kip848[name]; ok {
						protocol.KIP848, protocol.Assignor = true, cg.AssignorName
					}
					if err := cli.WriteGroupLag(cmd.OutOrStdout(), g, protocol); err != nil {
						return err
					}
				}
				return errors.Join(errs...)
			})
		},
	}
}

// describeKIP848 returns the KIP-848 consumer groups among the described ones, with their
// server-side assignor, which DescribeGroups does not tell. A broker without
// ConsumerGroupDescribe, or a group it does not know as a consumer group (a classic group),
// leaves the group out.
func describeKIP848(ctx context.Context, adm *kadm.Client, lags kadm.DescribedGroupLags) map[string]kadm.DescribedConsumerGroup {
	var names []string
	for name, g := range lags {
		if g.Error() == nil && g.ProtocolType == "consumer" {
			names = append(names, name)
		}
	}
	out := map[string]kadm.DescribedConsumerGroup{}
	if len(names) == 0 {
		return out
	}
	// Partial answers are kept: a failure only means those groups are shown as classic ones.
	described, _ := adm.DescribeConsumerGroups(ctx, names...)
	for name, g := range described {
		if g.Err == nil {
			out[name] = g
		}
	}
	return out
}

func newGroupDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete groups that have no members, with their committed offsets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteGroups(ctx, args...)
				if err != nil {
					return cli.ResponseError("delete group", "", err, "")
				}
				var errs []error
				for _, name := range args {
					if r, ok := resps[name]; ok && r.Err != nil {
						errs = append(errs, cli.ResponseError("delete group", name, r.Err, ""))
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", name)
				}
				return errors.Join(errs...)
			})
		},
	}
}

func newGroupResetOffsetsCmd(cf *clientFlags) *cobra.Command {
	var (
		topics            []string
		allTopics         bool
		earliest, latest  bool
		toOffset, shiftBy int64
		datetime          string
		execute           bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP",
		Short: "Move a group's committed offsets (a dry run unless --execute)",
		Long: `Move a group's committed offsets, like kafka-consumer-groups.sh --reset-offsets.
Without --execute it only prints the plan. The group must have no active members.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			var offPtr, shiftPtr *int64
			if cmd.Flags().Changed("to-offset") {
				offPtr = &toOffset
			}
			if cmd.Flags().Changed("shift-by") {
				shiftPtr = &shiftBy
			}
			strategy, err := cli.ParseResetStrategy(earliest, latest, offPtr, shiftPtr, datetime)
			if err != nil {
				return err
			}
			scope, err := cli.ParseTopicPartitions(topics)
			if err != nil {
				return err
			}
			if len(scope) == 0 && !allTopics {
				return fmt.Errorf("choose --topic T[:partitions] (repeatable) or --all-topics")
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				plan, err := planReset(ctx, adm, group, scope, allTopics, strategy)
				if err != nil {
					return err
				}
				if execute {
					if err := checkGroupInactive(ctx, adm, group); err != nil {
						return err
					}
					resps, err := adm.CommitOffsets(ctx, group, plan)
					if err != nil {
						return cli.ResponseError("reset offsets of group", group, err, "")
					}
					if err := resps.Error(); err != nil {
						return cli.ResponseError("reset offsets of group", group, err, "")
					}
				}
				if err := cli.WriteOffsetPlan(cmd.OutOrStdout(), group, plan); err != nil {
					return err
				}
				if !execute {
					fmt.Fprintln(cmd.ErrOrStderr(), "dry run: nothing changed; add --execute to apply")
				}
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&topics, "topic", nil, "topic, or topic:0,1,2 for some partitions (repeatable)")
	fs.BoolVar(&allTopics, "all-topics", false, "every topic the group has committed offsets for")
	fs.BoolVar(&earliest, "to-earliest", false, "reset to the log start offset")
	fs.BoolVar(&latest, "to-latest", false, "reset to the log end offset")
	fs.Int64Var(&toOffset, "to-offset", 0, "reset to this offset")
	fs.Int64Var(&shiftBy, "shift-by", 0, "move the committed offset by this much (negative: back)")
	fs.StringVar(&datetime, "to-datetime", "", "reset to the first offset at or after this time (RFC 3339, yyyy-MM-ddTHH:mm:ss.SSS UTC, or epoch ms)")
	fs.BoolVar(&execute, "execute", false, "apply the plan (default: dry run)")
	return cmd
}

// checkGroupInactive refuses to reset the offsets of a group with members, as Kafka does.
func checkGroupInactive(ctx context.Context, adm *kadm.Client, group string) error {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return cli.ResponseError("describe group", group, err, "")
	}
	g := described[group]
	if errors.Is(g.Err, kerr.GroupIDNotFound) {
		return nil // a group that does not exist yet (DescribeGroups v6+), as Dead before
	}
	if g.Err != nil {
		return cli.ResponseError("describe group", group, g.Err, "")
	}
	if g.State != "Empty" && g.State != "Dead" {
		return fmt.Errorf("offsets of group %q can only be reset while it is inactive; it is %s with %d members", group, g.State, len(g.Members))
	}
	return nil
}

// planReset computes the new offset of every partition in scope (or of every partition the
// group has committed offsets for, with allTopics).
func planReset(ctx context.Context, adm *kadm.Client, group string, scope map[string][]int32, allTopics bool, s cli.ResetStrategy) (kadm.Offsets, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, cli.ResponseError("fetch offsets of group", group, err, "")
	}
	if err := committed.Error(); err != nil {
		return nil, cli.ResponseError("fetch offsets of group", group, err, "")
	}
	if allTopics {
		committed.Each(func(o kadm.OffsetResponse) {
			if _, ok := scope[o.Topic]; !ok {
				scope[o.Topic] = nil
			}
		})
		if len(scope) == 0 {
			return nil, fmt.Errorf("group %q has no committed offsets; name the topics with --topic", group)
		}
	}
	topicNames := make([]string, 0, len(scope))
	for t := range scope {
		topicNames = append(topicNames, t)
	}
	sort.Strings(topicNames)
	starts, err := adm.ListStartOffsets(ctx, topicNames...)
	if err != nil {
		return nil, cli.ResponseError("list offsets", "", err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, topicNames...)
	if err != nil {
		return nil, cli.ResponseError("list offsets", "", err, "")
	}
	var atTime kadm.ListedOffsets
	if s.Kind == "datetime" {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, s.AtMilli, topicNames...); err != nil {
			return nil, cli.ResponseError("list offsets", "", err, "")
		}
	}
	plan := kadm.Offsets{}
	for _, topic := range topicNames {
		parts := scope[topic]
		if parts == nil {
			for p := range ends[topic] {
				parts = append(parts, p)
			}
			if len(parts) == 0 {
				return nil, fmt.Errorf("topic %q does not exist", topic)
			}
		}
		for _, p := range parts {
			end, ok := ends.Lookup(topic, p)
			if !ok || end.Err != nil {
				return nil, fmt.Errorf("topic %q partition %d: no log end offset (%v)", topic, p, end.Err)
			}
			start, _ := starts.Lookup(topic, p)
			po := cli.PartitionOffsets{Committed: -1, Start: start.Offset, End: end.Offset, AtTime: end.Offset}
			if c, ok := committed.Lookup(topic, p); ok && c.Err == nil {
				po.Committed = c.At
			}
			if s.Kind == "datetime" {
				if at, ok := atTime.Lookup(topic, p); ok && at.Err == nil && at.Offset >= 0 {
					po.AtTime = at.Offset
				}
			}
			plan.Add(kadm.Offset{Topic: topic, Partition: p, At: cli.PlanReset(s, po), LeaderEpoch: -1})
		}
	}
	return plan, nil
}

func newGroupDeleteOffsetsCmd(cf *clientFlags) *cobra.Command {
	var topics []string
	cmd := &cobra.Command{
		Use:   "delete-offsets GROUP --topic T[:partitions]...",
		Short: "Delete a group's committed offsets for some topics or partitions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			scope, err := cli.ParseTopicPartitions(topics)
			if err != nil {
				return err
			}
			if len(scope) == 0 {
				return fmt.Errorf("name the offsets to delete with --topic T[:partitions]")
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				set := kadm.TopicsSet{}
				for topic, parts := range scope {
					if parts == nil {
						td, err := lookupTopic(ctx, adm, topic)
						if err != nil {
							return err
						}
						for p := range td.Partitions {
							parts = append(parts, p)
						}
					}
					set.Add(topic, parts...)
				}
				resps, err := adm.DeleteOffsets(ctx, group, set)
				if err != nil {
					return cli.ResponseError("delete offsets of group", group, err, "")
				}
				if err := resps.Error(); err != nil {
					return cli.ResponseError("delete offsets of group", group, err, "")
				}
				for _, tp := range set.Sorted() {
					for _, p := range tp.Partitions {
						fmt.Fprintf(cmd.OutOrStdout(), "deleted offset of group %s for %s partition %d\n", group, tp.Topic, p)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "topic, or topic:0,1 for some partitions (repeatable)")
	return cmd
}
