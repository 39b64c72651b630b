package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newTxnCmd())
}

// newTxnCmd builds `samsa txn`, the equivalent of kafka-transactions.sh.
func newTxnCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "List and describe transactions, list a partition's producers, find and abort hanging transactions",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newTxnListCmd(cf), newTxnDescribeCmd(cf), newTxnProducersCmd(cf), newTxnHangingCmd(cf), newTxnAbortCmd(cf))
	return cmd
}

func newTxnListCmd(cf *clientFlags) *cobra.Command {
	var states []string
	var producerIDs []int64
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List transactional ids with their producer id, state and coordinator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				ls, err := adm.ListTransactions(ctx, producerIDs, states)
				if err != nil {
					return cli.ResponseError("list transactions", "", err, "")
				}
				return cli.WriteTransactionList(cmd.OutOrStdout(), ls)
			})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only transactions in these states (Ongoing, PrepareCommit, CompleteAbort, ...)")
	cmd.Flags().Int64SliceVar(&producerIDs, "producer-id", nil, "only transactions of these producer ids")
	return cmd
}

func newTxnDescribeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transaction's coordinator, state, producer, timeout, start and partitions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				ds, err := adm.DescribeTransactions(ctx, args...)
				if err != nil {
					return cli.ResponseError("describe transaction", "", err, "")
				}
				var errs []error
				for i, id := range args {
					d, ok := ds[id]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("transaction %s: no answer", id))
						continue
					case d.Err != nil:
						errs = append(errs, cli.ResponseError("describe transaction", id, d.Err, ""))
						continue
					}
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					if err := cli.WriteTransactionDescription(cmd.OutOrStdout(), d, time.Now()); err != nil {
						return err
					}
				}
				return errors.Join(errs...)
			})
		},
	}
}

// partitionFlags are --topic and --partition (-1: every partition).
type partitionFlags struct {
	topic     string
	partition int32
}

func (f *partitionFlags) register(cmd *cobra.Command, all bool) {
	cmd.Flags().StringVar(&f.topic, "topic", "", "the topic (required)")
	def, usage := int32(-1), "the partition (default: every partition)"
	if !all {
		def, usage = 0, "the partition"
	}
	cmd.Flags().Int32Var(&f.partition, "partition", def, usage)
	_ = cmd.MarkFlagRequired("topic")
}

// describeProducers asks the partitions' leaders for their producers (DescribeProducers),
// returning every partition's, sorted, and the answer by partition.
func (f *partitionFlags) describeProducers(ctx context.Context, adm *kadm.Client) ([]kadm.DescribedProducer, []kadm.DescribedProducersPartition, error) {
	td, err := lookupTopic(ctx, adm, f.topic)
	if err != nil {
		return nil, nil, err
	}
	set := kadm.TopicsSet{}
	if f.partition >= 0 {
		if err := checkPartition(td, f.partition); err != nil {
			return nil, nil, err
		}
		set.Add(f.topic, f.partition)
	} else {
		for p := range td.Partitions {
			set.Add(f.topic, p)
		}
	}
	ds, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, nil, cli.ResponseError("describe producers of topic", f.topic, err, "")
	}
	parts := ds.SortedPartitions()
	var all []kadm.DescribedProducer
	for _, p := range parts {
		if p.Err != nil {
			return nil, nil, cli.ResponseError("describe producers of topic", fmt.Sprintf("%s partition %d", p.Topic, p.Partition), p.Err, "")
		}
		all = append(all, p.ActiveProducers.Sorted()...)
	}
	return all, parts, nil
}

func newTxnProducersCmd(cf *clientFlags) *cobra.Command {
	var pf partitionFlags
	cmd := &cobra.Command{
		Use:   "producers --topic T [--partition P]",
		Short: "List a partition's producers (DescribeProducers) with their open transaction's first offset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				ps, _, err := pf.describeProducers(ctx, adm)
				if err != nil {
					return err
				}
				return cli.WriteProducers(cmd.OutOrStdout(), ps)
			})
		},
	}
	pf.register(cmd, true)
	return cmd
}

func newTxnHangingCmd(cf *clientFlags) *cobra.Command {
	var pf partitionFlags
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "hanging --topic T [--partition P]",
		Short: "Find transactions that hold a partition's last stable offset and that no coordinator will end",
		Long: `Find hanging transactions, like kafka-transactions.sh find-hanging: a producer with a
transaction open on the partition for longer than --max-age (transaction.max.timeout.ms,
15 minutes by default) whose transactional id no longer has that producer, or is no longer
in a transaction with the partition. Such a transaction blocks read_committed consumers at
the last stable offset until it is aborted with samsa txn abort.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				all, _, err := pf.describeProducers(ctx, adm)
				if err != nil {
					return err
				}
				hanging, err := findHanging(ctx, adm, cli.HangingCandidates(all, time.Now(), maxAge))
				if err != nil {
					return err
				}
				return cli.WriteProducers(cmd.OutOrStdout(), hanging)
			})
		},
	}
	pf.register(cmd, true)
	cmd.Flags().DurationVar(&maxAge, "max-age", 15*time.Minute, "how long a transaction must have been open (the cluster's transaction.max.timeout.ms)")
	return cmd
}

// findHanging keeps the candidates whose transaction no coordinator knows as open with
// their partition.
func findHanging(ctx context.Context, adm *kadm.Client, candidates []kadm.DescribedProducer) ([]kadm.DescribedProducer, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	var pids []int64
	for _, c := range candidates {
		pids = append(pids, c.ProducerID)
	}
	listed, err := adm.ListTransactions(ctx, pids, nil)
	if err != nil {
		return nil, cli.ResponseError("list transactions", "", err, "")
	}
	byPID := map[int64]*kadm.DescribedTransaction{}
	if ids := listed.TransactionalIDs(); len(ids) > 0 {
		ds, err := adm.DescribeTransactions(ctx, ids...)
		if err != nil {
			return nil, cli.ResponseError("describe transaction", "", err, "")
		}
		for _, l := range listed {
			if d, ok := ds[l.TxnID]; ok {
				byPID[l.ProducerID] = &d
			}
		}
	}
	var out []kadm.DescribedProducer
	for _, c := range candidates {
		if cli.IsHanging(c, byPID[c.ProducerID]) {
			out = append(out, c)
		}
	}
	return out, nil
}

func newTxnAbortCmd(cf *clientFlags) *cobra.Command {
	var pf partitionFlags
	var startOffset int64
	cmd := &cobra.Command{
		Use:   "abort --topic T --partition P --start-offset O",
		Short: "Abort the open transaction that starts at an offset of a partition (a hanging one)",
		Long: `Abort a transaction on one partition, like kafka-transactions.sh abort --start-offset:
the producer whose open transaction starts at --start-offset (see samsa txn producers or
samsa txn hanging) gets an ABORT marker written by the partition's leader (WriteTxnMarkers),
which releases the last stable offset. Use it for hanging transactions only: a transaction
its coordinator still runs is aborted on this partition alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.withAdmin(cmd, func(ctx context.Context, adm *kadm.Client) error {
				_, parts, err := pf.describeProducers(ctx, adm)
				if err != nil {
					return err
				}
				p, err := cli.AbortTarget(parts[0].ActiveProducers, startOffset)
				if err != nil {
					return err
				}
				set := kadm.TopicsSet{}
				set.Add(pf.topic, pf.partition)
				resps, err := adm.WriteTxnMarkers(ctx, kadm.TxnMarkers{ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch,
					CoordinatorEpoch: cli.MarkerCoordinatorEpoch(p), Topics: set})
				what := fmt.Sprintf("%s partition %d", pf.topic, pf.partition)
				if err != nil {
					return cli.ResponseError("abort the transaction on", what, err, "")
				}
				for _, pr := range resps.SortedPartitions() {
					if pr.Err != nil {
						return cli.ResponseError("abort the transaction on", what, pr.Err, "")
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "aborted the transaction of producer %d (epoch %d) starting at offset %d of %s\n",
					p.ProducerID, p.ProducerEpoch, startOffset, what)
				return nil
			})
		},
	}
	pf.register(cmd, false)
	cmd.Flags().Int64Var(&startOffset, "start-offset", -1, "the first offset of the transaction to abort (required)")
	_ = cmd.MarkFlagRequired("start-offset")
	return cmd
}
