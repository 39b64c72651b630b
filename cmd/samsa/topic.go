package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newTopicCmd())
}

// newTopicCmd builds `samsa topic` and its subcommands. Each call returns a fresh tree with
// its own flag variables, so tests can run commands repeatedly in-process.
func newTopicCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(
		newTopicCreateCmd(cf),
		newTopicListCmd(cf),
		newTopicDescribeCmd(cf),
		newTopicDeleteCmd(cf),
		newTopicAlterConfigCmd(cf),
	)
	return cmd
}

func newTopicCreateCmd(cf *clientFlags) *cobra.Command {
	var (
		partitions        int32
		replicationFactor int16
		configs           []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if partitions == 0 || partitions < -1 {
				return fmt.Errorf("invalid --partitions %d: must be positive (or -1 for the broker default)", partitions)
			}
			if replicationFactor == 0 || replicationFactor < -1 {
				return fmt.Errorf("invalid --replication-factor %d: must be positive (or -1 for the broker default)", replicationFactor)
			}
			cfgs, err := cli.ParseConfigs(configs)
			if err != nil {
				return fmt.Errorf("--config: %w", err)
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.CreateTopics(ctx, partitions, replicationFactor, cfgs, name)
				if err != nil {
					return cli.ResponseError("create topic", name, err, "")
				}
				resp, ok := resps[name]
				if !ok {
					return fmt.Errorf("create topic %s: the broker did not answer for this topic", name)
				}
				if resp.Err != nil {
					return cli.ResponseError("create topic", name, resp.Err, resp.ErrMessage)
				}
				if resp.NumPartitions > 0 && resp.ReplicationFactor > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %s (partitions: %d, replication factor: %d)\n",
						name, resp.NumPartitions, resp.ReplicationFactor)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "created topic %s\n", name)
				}
				printBrokerWarning(cmd, resp.ErrMessage)
				return nil
			})
		},
	}
	cmd.Flags().Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker's num.partitions)")
	cmd.Flags().Int16Var(&replicationFactor, "replication-factor", -1, "replicas per partition (-1: the broker's default.replication.factor)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "topic config override key=value (repeatable)")
	return cmd
}

func newTopicListCmd(cf *clientFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List topics with their partition count and replication factor",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				list := adm.ListTopics
				if all {
					list = adm.ListTopicsWithInternal
				}
				topics, err := list(ctx)
				if err != nil {
					return cli.ResponseError("list", "topics", err, "")
				}
				return cli.WriteTopicList(cmd.OutOrStdout(), topics)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include internal topics (__consumer_offsets, ...)")
	return cmd
}

func newTopicDescribeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show a topic's partitions (leader, replicas, ISR) and its non-default configs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				return describeTopics(ctx, cmd, adm, names)
			})
		},
	}
}

// describeTopics prints each named topic in order, separated by blank lines; topics that
// cannot be described are reported together in the returned error.
func describeTopics(ctx context.Context, cmd *cobra.Command, adm *kadm.Client, names []string) error {
	topics, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return cli.ResponseError("describe", "topics", err, "")
	}
	var errs []error
	var found []string
	for _, name := range names {
		td, ok := topics[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("describe topic %s: the broker did not return it", name))
		case td.Err != nil:
			errs = append(errs, cli.ResponseError("describe topic", name, td.Err, ""))
		default:
			found = append(found, name)
		}
	}
	configs := map[string]kadm.ResourceConfig{}
	if len(found) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, found...)
		if err != nil {
			return cli.ResponseError("describe configs of", "topics", err, "")
		}
		for _, rc := range rcs {
			configs[rc.Name] = rc
		}
	}
	out := cmd.OutOrStdout()
	for i, name := range found {
		if i > 0 {
			fmt.Fprintln(out)
		}
		rc, ok := configs[name]
		if ok && rc.Err != nil {
			errs = append(errs, cli.ResponseError("describe configs of topic", name, rc.Err, rc.ErrMessage))
		}
		if err := cli.WriteTopicDescription(out, topics[name], cli.TopicOverrides(rc.Configs)); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func newTopicDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteTopics(ctx, names...)
				if err != nil {
					return cli.ResponseError("delete", "topics", err, "")
				}
				var errs []error
				for _, name := range names {
					resp, ok := resps[name]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("delete topic %s: the broker did not answer for this topic", name))
					case resp.Err != nil:
						errs = append(errs, cli.ResponseError("delete topic", name, resp.Err, resp.ErrMessage))
					default:
						fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", name)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
}

func newTopicAlterConfigCmd(cf *clientFlags) *cobra.Command {
	var sets, deletes []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME... --set key=value ... --delete key ...",
		Short: "Set or remove topic config overrides (IncrementalAlterConfigs)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, names []string) error {
			alters, err := configAlterations(sets, deletes)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.AlterTopicConfigs(ctx, alters, names...)
				if err != nil {
					return cli.ResponseError("alter configs of", "topics", err, "")
				}
				byName := map[string]kadm.AlterConfigsResponse{}
				for _, r := range resps {
					byName[r.Name] = r
				}
				var errs []error
				for _, name := range names {
					resp, ok := byName[name]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("alter configs of topic %s: the broker did not answer for this topic", name))
					case resp.Err != nil:
						errs = append(errs, cli.ResponseError("alter configs of topic", name, resp.Err, resp.ErrMessage))
					default:
						fmt.Fprintf(cmd.OutOrStdout(), "altered configs of topic %s\n", name)
						printBrokerWarning(cmd, resp.ErrMessage)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "config to set, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&deletes, "delete", nil, "config override to remove, reverting to the default (repeatable)")
	return cmd
}

// configAlterations turns --set and --delete values into incremental alterations. At least
// one is required, and a key may appear only once across both.
func configAlterations(sets, deletes []string) ([]kadm.AlterConfig, error) {
	if len(sets) == 0 && len(deletes) == 0 {
		return nil, errors.New("nothing to alter: give --set key=value and/or --delete key")
	}
	kvs, err := cli.ParseKeyValues(sets)
	if err != nil {
		return nil, fmt.Errorf("--set: %w", err)
	}
	seen := map[string]bool{}
	var alters []kadm.AlterConfig
	for _, kv := range kvs {
		if seen[kv.Key] {
			return nil, fmt.Errorf("config %q given more than once", kv.Key)
		}
		seen[kv.Key] = true
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv.Key, Value: &kv.Value})
	}
	for _, key := range deletes {
		if key == "" {
			return nil, errors.New("--delete: empty config name")
		}
		if seen[key] {
			return nil, fmt.Errorf("config %q given more than once", key)
		}
		seen[key] = true
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: key})
	}
	return alters, nil
}

// printBrokerWarning prints to stderr the message a broker sent with a successful answer (for
// example that cleanup.policy=compact has no effect yet), if any.
func printBrokerWarning(cmd *cobra.Command, msg string) {
	if msg != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "broker: %s\n", msg)
	}
}
