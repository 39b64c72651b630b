package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newReassignCmd())
}

// newReassignCmd builds `samsa reassign`, the counterpart of kafka-reassign-partitions.sh:
// generate (--generate), execute (--execute), list (the reassignments in progress, which
// Kafka's tool shows through --list), verify (--verify) and cancel (--cancel). It is a
// top-level command, like topic, group, acl and token, because it stands for one Kafka tool
// and spans topics; `samsa cluster` is the cluster's own state and the local cluster.
func newReassignCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "reassign",
		Short: "Move partitions between brokers: generate, execute, list, verify and cancel reassignments",
		Long: `Move partition replicas between brokers, like kafka-reassign-partitions.sh
(AlterPartitionReassignments and ListPartitionReassignments, KIP-455). Plans are Kafka's
reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}.`,
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newReassignGenerateCmd(cf), newReassignExecuteCmd(cf), newReassignListCmd(cf),
		newReassignVerifyCmd(cf), newReassignCancelCmd(cf))
	return cmd
}

// planFlags name the partitions a command acts on: a reassignment JSON file, or one
// partition given by --topic, --partition and (when the command needs targets) --replicas.
type planFlags struct {
	file      string
	topic     string
	partition int32
	replicas  string
}

// register adds the flags; withReplicas adds --replicas.
func (f *planFlags) register(cmd *cobra.Command, withReplicas bool) {
	cmd.Flags().StringVar(&f.file, "reassignment-json-file", "", "the plan: Kafka's reassignment JSON file")
	cmd.Flags().StringVar(&f.topic, "topic", "", "the topic of the one partition to act on (instead of a plan file)")
	cmd.Flags().Int32Var(&f.partition, "partition", 0, "the partition, with --topic")
	if withReplicas {
		cmd.Flags().StringVar(&f.replicas, "replicas", "", "the target broker ids, comma-separated, the preferred leader first (with --topic)")
	}
}

// plan reads the plan file, or builds a one-partition plan from the flags (with no
// replicas when needReplicas is false: a cancel).
func (f *planFlags) plan(needReplicas bool) (cli.Plan, error) {
	switch {
	case f.file != "" && f.topic != "":
		return cli.Plan{}, fmt.Errorf("give either --reassignment-json-file or --topic, not both")
	case f.file != "":
		data, err := os.ReadFile(f.file)
		if err != nil {
			return cli.Plan{}, fmt.Errorf("--reassignment-json-file: %w", err)
		}
		plan, err := cli.ParsePlan(data)
		if err != nil {
			return cli.Plan{}, fmt.Errorf("--reassignment-json-file %s: %w", f.file, err)
		}
		return plan, nil
	case f.topic == "":
		return cli.Plan{}, fmt.Errorf("give --reassignment-json-file or --topic and --partition")
	}
	part := cli.PlanPartition{Topic: f.topic, Partition: f.partition}
	if f.partition < 0 {
		return cli.Plan{}, fmt.Errorf("--partition %d: the partition number cannot be negative", f.partition)
	}
	if needReplicas {
		if f.replicas == "" {
			return cli.Plan{}, fmt.Errorf("--topic needs --replicas, the target broker ids")
		}
		ids, err := cli.ParseBrokerIDs(f.replicas)
		if err != nil {
			return cli.Plan{}, fmt.Errorf("--replicas: %w", err)
		}
		part.Replicas = ids
	}
	return cli.Plan{Version: 1, Partitions: []cli.PlanPartition{part}}, nil
}

// planSet is the plan's partitions as a kadm.TopicsSet.
func planSet(plan cli.Plan) kadm.TopicsSet {
	set := kadm.TopicsSet{}
	for _, p := range plan.Partitions {
		set.Add(p.Topic, p.Partition)
	}
	return set
}

// describePlanTopics describes the plan's topics (Metadata).
func describePlanTopics(ctx context.Context, adm *kadm.Client, topics []string) (kadm.TopicDetails, error) {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, cli.ResponseError("describe", "topics", err, "")
	}
	return details, nil
}

// alterResults reports each partition's answer to AlterPartitionReassignments: the names
// that succeeded, and the errors of the others ("reassign t-0: INVALID_REPLICA_ASSIGNMENT: ...").
func alterResults(action string, plan cli.Plan, res kadm.AlterPartitionAssignmentsResponses) (ok []string, errs []error) {
	for _, p := range plan.Sorted().Partitions {
		r, found := res[p.Topic][p.Partition]
		switch {
		case !found:
			errs = append(errs, fmt.Errorf("%s %s: the broker did not answer for this partition", action, p.Name()))
		case r.Err != nil:
			errs = append(errs, cli.ResponseError(action, p.Name(), r.Err, r.ErrMessage))
		default:
			ok = append(ok, p.Name())
		}
	}
	return ok, errs
}

func newReassignGenerateCmd(cf *clientFlags) *cobra.Command {
	var topicsFile, topics, brokerList string
	cmd := &cobra.Command{
		Use:   "generate (--topics T,... | --topics-to-move-json-file FILE) --broker-list 1,2,3",
		Short: "Propose moving topics' partitions onto a list of brokers (prints the current and the proposed plan)",
		Long: `Propose an assignment of every partition of the topics onto the brokers of --broker-list,
keeping each partition's replication factor, the replicas dealt round-robin over the brokers
so that leaders and replicas spread evenly, like kafka-reassign-partitions --generate. Prints
the current assignment (to roll back with) and the proposal, both as Kafka's reassignment
JSON; nothing changes until the proposal is given to samsa reassign execute.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := topicsToMove(topicsFile, topics)
			if err != nil {
				return err
			}
			brokers, err := cli.ParseBrokerIDs(brokerList)
			if err != nil {
				return fmt.Errorf("--broker-list: %w", err)
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				details, err := describePlanTopics(ctx, adm, names)
				if err != nil {
					return err
				}
				current, proposed, err := cli.ProposeAssignment(details, names, brokers)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Current partition replica assignment\n%s\n\nProposed partition reassignment configuration\n%s\n",
					current.JSON(), proposed.JSON())
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&topics, "topics", "", "the topics to move, comma-separated")
	cmd.Flags().StringVar(&topicsFile, "topics-to-move-json-file", "", `the topics to move as Kafka's JSON: {"version":1,"topics":[{"topic":"t"}]}`)
	cmd.Flags().StringVar(&brokerList, "broker-list", "", "the brokers to move onto, comma-separated ids")
	_ = cmd.MarkFlagRequired("broker-list")
	return cmd
}

// topicsToMove reads the topics from --topics-to-move-json-file or --topics (one of them).
func topicsToMove(file, list string) ([]string, error) {
	switch {
	case (file == "") == (list == ""):
		return nil, fmt.Errorf("give either --topics or --topics-to-move-json-file")
	case list != "":
		names := cli.SplitList(list)
		if len(names) == 0 {
			return nil, fmt.Errorf("--topics: no topic given")
		}
		return names, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--topics-to-move-json-file: %w", err)
	}
	names, err := cli.ParseTopicsToMove(data)
	if err != nil {
		return nil, fmt.Errorf("--topics-to-move-json-file %s: %w", file, err)
	}
	return names, nil
}

func newReassignExecuteCmd(cf *clientFlags) *cobra.Command {
	var (
		pf         planFlags
		additional bool
	)
	cmd := &cobra.Command{
		Use:   "execute (--reassignment-json-file FILE | --topic T --partition P --replicas 1,2,3)",
		Short: "Start reassigning partitions (prints the current assignment first, to roll back with)",
		Long: `Start moving the plan's partitions to their target replicas, like kafka-reassign-partitions
--execute. The current assignment of those partitions is printed first as a reassignment JSON
plan: save it to roll back with (samsa reassign execute --reassignment-json-file rollback.json).
Partitions already being reassigned are refused unless --additional is given (it replaces
their target). Follow the move with samsa reassign verify --wait.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := pf.plan(true)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				details, err := describePlanTopics(ctx, adm, plan.Topics())
				if err != nil {
					return err
				}
				current, err := cli.CurrentPlan(plan, details)
				if err != nil {
					return err
				}
				if !additional {
					listed, err := adm.ListPartitionReassignments(ctx, planSet(plan))
					if err != nil {
						return cli.ResponseError("list", "partition reassignments", err, "")
					}
					if len(listed.Sorted()) > 0 {
						return fmt.Errorf("cannot execute because there is an existing partition reassignment (of %s); use --additional to replace it", reassigningNames(listed))
					}
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", current.JSON())
				var req kadm.AlterPartitionAssignmentsReq
				for _, p := range plan.Partitions {
					req.Assign(p.Topic, p.Partition, p.Replicas)
				}
				res, err := adm.AlterPartitionAssignments(ctx, req)
				if err != nil {
					return cli.ResponseError("reassign", "partitions", err, "")
				}
				ok, errs := alterResults("reassign", plan, res)
				if len(ok) > 0 {
					fmt.Fprintf(out, "Successfully started partition reassignments for %s\n", strings.Join(ok, ","))
				}
				return errors.Join(errs...)
			})
		},
	}
	pf.register(cmd, true)
	cmd.Flags().BoolVar(&additional, "additional", false, "also when some of the partitions are being reassigned (their target is replaced)")
	return cmd
}

// reassigningNames lists the partitions being reassigned as topic-partition, comma-separated.
func reassigningNames(listed kadm.ListPartitionReassignmentsResponses) string {
	var names []string
	for _, r := range listed.Sorted() {
		names = append(names, cli.PlanPartition{Topic: r.Topic, Partition: r.Partition}.Name())
	}
	return strings.Join(names, ",")
}

func newReassignListCmd(cf *clientFlags) *cobra.Command {
	var topics []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the partition reassignments in progress (replicas, adding and removing replicas)",
		Long: `List the partitions being reassigned, with their replicas and the replicas being added and
removed (ListPartitionReassignments), like kafka-reassign-partitions --list. --topic limits the
listing to some topics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.withClient(cmd, func(ctx context.Context, cl *kgo.Client) error {
				adm := kadm.NewClient(cl)
				if len(topics) == 0 {
					resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl) // null topics: all
					if err != nil {
						return cli.ResponseError("list", "partition reassignments", err, "")
					}
					listed, err := cli.ReassignmentsFrom(resp)
					if err != nil {
						return cli.ResponseError("list", "partition reassignments", err, "")
					}
					return cli.WriteReassignments(cmd.OutOrStdout(), listed)
				}
				details, err := describePlanTopics(ctx, adm, topics)
				if err != nil {
					return err
				}
				set := kadm.TopicsSet{}
				for _, name := range topics {
					td, ok := details[name]
					switch {
					case !ok:
						return fmt.Errorf("topic %s does not exist", name)
					case td.Err != nil:
						return cli.ResponseError("describe topic", name, td.Err, "")
					}
					for p := range td.Partitions {
						set.Add(name, p)
					}
				}
				listed, err := adm.ListPartitionReassignments(ctx, set)
				if err != nil {
					return cli.ResponseError("list", "partition reassignments", err, "")
				}
				return cli.WriteReassignments(cmd.OutOrStdout(), listed)
			})
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "only this topic's partitions (repeatable)")
	return cmd
}

func newReassignVerifyCmd(cf *clientFlags) *cobra.Command {
	var (
		pf       planFlags
		wait     bool
		interval time.Duration
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify (--reassignment-json-file FILE | --topic T --partition P --replicas 1,2,3) [--wait]",
		Short: "Check a plan: completed, in progress or not started per partition (--wait: until done)",
		Long: `Check each partition of the plan, like kafka-reassign-partitions --verify: completed (no
reassignment in progress and the replicas are the plan's), still in progress, or neither
(no reassignment in progress, other replicas). Exits with an error unless every partition is
completed. --wait checks again every --interval while any is in progress, up to --timeout
(and, once none is, up to 10 s more for the brokers' metadata to show the plan's replicas).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := pf.plan(true)
			if err != nil {
				return err
			}
			if interval <= 0 || timeout <= 0 {
				return fmt.Errorf("--interval and --timeout must be positive")
			}
			limit := adminTimeout
			if wait {
				limit = timeout
			}
			return cf.withAdminTimeout(cmd, limit, func(ctx context.Context, adm *kadm.Client) error {
				var settled time.Time // when --wait first saw nothing in progress
				for {
					details, err := describePlanTopics(ctx, adm, plan.Topics())
					if err != nil {
						return err
					}
					listed, err := adm.ListPartitionReassignments(ctx, planSet(plan))
					if err != nil {
						return cli.ResponseError("list", "partition reassignments", err, "")
					}
					progress := cli.Progress(plan, details, listed)
					waiting := inProgress(progress)
					if wait && !waiting && !completed(progress) {
						// The controller lists a reassignment until it completes, but the
						// broker's metadata follows a moment later: give it metadataGrace
						// to show the plan's replicas before calling them not started.
						if settled.IsZero() {
							settled = time.Now()
						}
						waiting = time.Since(settled) < metadataGrace
					}
					if wait && waiting {
						select {
						case <-ctx.Done():
							if _, _, err := cli.WriteProgress(cmd.OutOrStdout(), progress); err != nil {
								return err
							}
							return fmt.Errorf("gave up waiting for the reassignment after %v", timeout)
						case <-time.After(interval):
						}
						continue
					}
					moving, other, err := cli.WriteProgress(cmd.OutOrStdout(), progress)
					if err != nil {
						return err
					}
					switch {
					case moving > 0:
						return fmt.Errorf("%d of %d partitions still being reassigned", moving, len(progress))
					case other > 0:
						return fmt.Errorf("%d of %d partitions are not on the plan's replicas", other, len(progress))
					}
					return nil
				}
			}, kgo.MetadataMinAge(max(interval/2, 10*time.Millisecond))) // kadm's topic descriptions are cached that long
		},
	}
	pf.register(cmd, true)
	cmd.Flags().BoolVar(&wait, "wait", false, "check again until no partition of the plan is being reassigned")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --wait, how often to check")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "with --wait, how long to wait at most")
	return cmd
}

// metadataGrace is how long verify --wait, once no partition of the plan is being
// reassigned, waits for the brokers' metadata to show the plan's replicas.
const metadataGrace = 10 * time.Second

// completed tells whether every partition is on the plan's replicas.
func completed(progress []cli.PartitionProgress) bool {
	for _, p := range progress {
		if p.State != cli.ReassignCompleted {
			return false
		}
	}
	return true
}

// inProgress tells whether any partition is still being reassigned.
func inProgress(progress []cli.PartitionProgress) bool {
	for _, p := range progress {
		if p.State == cli.ReassignInProgress {
			return true
		}
	}
	return false
}

func newReassignCancelCmd(cf *clientFlags) *cobra.Command {
	var pf planFlags
	cmd := &cobra.Command{
		Use:   "cancel (--reassignment-json-file FILE | --topic T --partition P)",
		Short: "Cancel reassignments in progress: the partitions go back to their original replicas",
		Long: `Cancel the reassignment of the plan's partitions (or of one partition), like
kafka-reassign-partitions --cancel: each goes back to the replicas it had before (a cancel of
a partition not being reassigned fails with NO_REASSIGNMENT_IN_PROGRESS).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := pf.plan(false)
			if err != nil {
				return err
			}
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				var req kadm.AlterPartitionAssignmentsReq
				for _, p := range plan.Partitions {
					req.CancelAssign(p.Topic, p.Partition)
				}
				res, err := adm.AlterPartitionAssignments(ctx, req)
				if err != nil {
					return cli.ResponseError("cancel reassignment of", "partitions", err, "")
				}
				ok, errs := alterResults("cancel reassignment of", plan, res)
				if len(ok) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Successfully cancelled partition reassignments for: %s\n", strings.Join(ok, ","))
				}
				return errors.Join(errs...)
			})
		},
	}
	pf.register(cmd, false)
	return cmd
}
