package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	var underReplicated, unavailable bool
	cmd := &cobra.Command{
		Use:   "describe [NAME...]",
		Short: "Show topics' partitions (leader, replicas, ISR, offline replicas) and non-default configs",
		Long: `Show each named topic (every topic, internal ones included, when none is named): its id,
partition count, replication factor and non-default configs, and per partition the leader, the
replicas, the in-sync replicas (ISR) and the offline replicas (a column shown when any). For
compacted topics, the log cleaner's state of each leader's log: DIRTY, the dirty ratio (the
share of the cleanable bytes not cleaned yet), and CLEANED TO, the offset below which the log
was compacted (Samsa brokers only: a tagged field of DescribeLogDirs).

--under-replicated and --unavailable show only the partitions with fewer in-sync replicas
than replicas, or without a live leader (as kafka-topics --describe
--under-replicated-partitions / --unavailable-partitions); topics with none are left out and
nothing is printed when no partition matches. Given both, a partition matching either is shown.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			return cf.withClient(cmd, func(ctx context.Context, cl *kgo.Client) error {
				return describeTopics(ctx, cmd, cl, names, underReplicated, unavailable)
			})
		},
	}
	cmd.Flags().BoolVar(&underReplicated, "under-replicated", false, "only partitions whose ISR is smaller than their replicas")
	cmd.Flags().BoolVar(&unavailable, "unavailable", false, "only partitions without a live leader")
	return cmd
}

// describeTopics prints each named topic (all topics if none is named) in order, separated by
// blank lines, with the partitions the filters select; topics that cannot be described are
// reported together in the returned error.
func describeTopics(ctx context.Context, cmd *cobra.Command, cl *kgo.Client, names []string, underReplicated, unavailable bool) error {
	adm := kadm.NewClient(cl)
	meta, err := describeMetadata(ctx, adm, names)
	if err != nil {
		return cli.ResponseError("describe", "topics", err, "")
	}
	topics := meta.Topics
	if len(names) == 0 {
		names = topics.Names()
	}
	var filters []cli.PartitionFilter
	if underReplicated {
		filters = append(filters, cli.UnderReplicated)
	}
	if unavailable {
		filters = append(filters, cli.Unavailable(meta.Brokers.NodeIDs()))
	}
	keep := cli.AnyOf(filters...)
	var errs []error
	var found []string
	for _, name := range names {
		td, ok := topics[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("describe topic %s: the broker did not return it", name))
		case td.Err != nil:
			errs = append(errs, cli.ResponseError("describe topic", name, td.Err, ""))
		case keep != nil && len(cli.Matching(td, keep)) == 0:
		default:
			found = append(found, name)
		}
	}
	configs, err := describeTopicConfigs(ctx, adm, found)
	if err != nil {
		return err
	}
	logDirs := leadersLogDirs(ctx, cl, topics, found)
	out := cmd.OutOrStdout()
	for i, name := range found {
		if i > 0 {
			fmt.Fprintln(out)
		}
		rc, ok := configs[name]
		if ok && rc.Err != nil {
			errs = append(errs, cli.ResponseError("describe configs of topic", name, rc.Err, rc.ErrMessage))
		}
		if err := cli.WriteTopicDescription(out, topics[name], cli.TopicOverrides(rc.Configs), keep,
			cli.CleanerStates(topics[name], logDirs)); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// describeMetadata returns the metadata of the named topics (every topic when none is named),
// asking again (for up to configsRetryFor) while the answering broker does not know some of
// them yet: a topic just created through another broker of a cluster reaches each broker's
// metadata a moment later. A topic that does not exist is thus reported after that wait.
func describeMetadata(ctx context.Context, adm *kadm.Client, names []string) (kadm.Metadata, error) {
	deadline := time.Now().Add(configsRetryFor)
	for {
		meta, err := adm.Metadata(ctx, names...)
		if err != nil || len(names) == 0 || time.Now().After(deadline) {
			return meta, err
		}
		unknown := false
		for _, name := range names {
			if td, ok := meta.Topics[name]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				unknown = true
			}
		}
		if !unknown {
			return meta, nil
		}
		select {
		case <-ctx.Done():
			return meta, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leadersLogDirs asks each broker leading a partition of the named topics for their
// DescribeLogDirs (v2+, whose partitions carry Samsa's cleaner state); a broker that does
// not answer is left out (its partitions show no cleaner state).
func leadersLogDirs(ctx context.Context, cl *kgo.Client, topics kadm.TopicDetails, names []string) map[int32]*kmsg.DescribeLogDirsResponse {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	leaders := map[int32]bool{}
	for _, name := range names {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic = name
		for _, p := range topics[name].Partitions {
			rt.Partitions = append(rt.Partitions, p.Partition)
			if p.Leader >= 0 {
				leaders[p.Leader] = true
			}
		}
		req.Topics = append(req.Topics, rt)
	}
	out := map[int32]*kmsg.DescribeLogDirsResponse{}
	for id := range leaders {
		if resp, err := req.RequestWith(ctx, cl.Broker(int(id))); err == nil {
			out[id] = resp
		}
	}
	return out
}

// configsRetryFor bounds how long describeTopicConfigs asks again for topics the answering
// broker does not know yet: a topic just created through another broker of a cluster reaches
// each broker's metadata a moment later.
const configsRetryFor = 5 * time.Second

// describeTopicConfigs returns the configs of the named topics by name, asking again (for up to
// configsRetryFor) for those the answering broker does not know yet.
func describeTopicConfigs(ctx context.Context, adm *kadm.Client, names []string) (map[string]kadm.ResourceConfig, error) {
	configs := map[string]kadm.ResourceConfig{}
	deadline := time.Now().Add(configsRetryFor)
	for len(names) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return nil, cli.ResponseError("describe configs of", "topics", err, "")
		}
		var unknown []string
		for _, rc := range rcs {
			configs[rc.Name] = rc
			if errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
				unknown = append(unknown, rc.Name)
			}
		}
		names = unknown
		if len(names) > 0 {
			if time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return configs, nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return configs, nil
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
