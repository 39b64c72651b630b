package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newConsumeCmd())
}

// consumeOptions are the parsed flags of `samsa consume`.
type consumeOptions struct {
	topic     string
	from      cli.StartOffset
	partition int32         // -1: every partition
	count     int64         // 0: unlimited
	idle      time.Duration // 0: wait forever
	format    *cli.Format
	// group, if set, consumes as a member of this consumer group and commits what was printed.
	group string
	// groupProtocol is classic (client-side assignment) or consumer (KIP-848).
	groupProtocol string
	// formatEndsLine is set when the format ends with \n itself, so no newline is added.
	formatEndsLine bool
}

// newConsumeCmd builds `samsa consume`, with fresh flag variables on each call.
func newConsumeCmd() *cobra.Command {
	var (
		cf        clientFlags
		from      string
		partition int32
		count     int64
		idle      time.Duration
		format    string
		group     string
		protocol  string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records from a topic, one per line",
		Long: "Consume reads records from TOPIC without a consumer group (nothing is committed)\n" +
			"and prints each with --format, followed by a newline unless the format ends with \\n.\n" +
			"It runs until --count records were printed, no record arrived for --timeout, or it\n" +
			"is interrupted.\n\n" +
			"Format placeholders: " + cli.FormatHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := consumeOptions{topic: args[0], partition: partition, count: count, idle: idle, group: group, groupProtocol: protocol}
			if protocol != "classic" && protocol != "consumer" {
				return fmt.Errorf("--group-protocol %q: expected classic or consumer", protocol)
			}
			if group != "" && partition >= 0 {
				return fmt.Errorf("--group and --partition exclude each other: a group member is assigned its partitions")
			}
			var err error
			if opts.from, err = cli.ParseStartOffset(from); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			if opts.format, err = cli.ParseFormat(format); err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			opts.formatEndsLine = strings.HasSuffix(format, `\n`)
			switch {
			case partition < -1:
				return fmt.Errorf("invalid --partition %d", partition)
			case count < 0:
				return fmt.Errorf("invalid --count %d", count)
			case idle < 0:
				return fmt.Errorf("invalid --timeout %v", idle)
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			return consume(ctx, &cf, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "end", "where to start: beginning, end, offset:N or timestamp:RFC3339-or-ms")
	fs.Int32Var(&partition, "partition", -1, "consume only this partition (default: all partitions)")
	fs.Int64Var(&count, "count", 0, "stop after this many records (0: no limit)")
	fs.DurationVar(&idle, "timeout", 0, "stop when no record arrived for this long (0: wait forever)")
	fs.StringVar(&group, "group", "", "consume as a member of this consumer group, committing the records printed (--from applies where the group has no committed offset)")
	fs.StringVar(&protocol, "group-protocol", "classic", "group protocol with --group: classic, or consumer (KIP-848, server-side assignment)")
	fs.StringVar(&format, "format", "%v", "output format per record (a newline is added unless it ends with \\n): "+cli.FormatHelp)
	return cmd
}

// consume prints records of opts.topic to out until the count is reached, the idle timeout
// expires or ctx is canceled (all of which end it without error), or a fetch fails.
func consume(ctx context.Context, cf *clientFlags, opts consumeOptions, out, stderr io.Writer) error {
	var kopts []kgo.Opt
	if opts.group != "" {
		kopts = append(kopts, kgo.ConsumerGroup(opts.group), kgo.ConsumeTopics(opts.topic),
			kgo.ConsumeResetOffset(opts.from.Offset), kgo.AutoCommitMarks())
		if opts.groupProtocol == "consumer" {
			kopts = append(kopts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		}
	} else if opts.partition >= 0 {
		kopts = append(kopts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			opts.topic: {opts.partition: opts.from.Offset},
		}))
	} else {
		kopts = append(kopts, kgo.ConsumeTopics(opts.topic), kgo.ConsumeResetOffset(opts.from.Offset))
	}
	cl, err := cf.connect(ctx, kopts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if opts.group != "" {
		// Commit what was printed, even when interrupted, before leaving the group.
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cl.CommitMarkedOffsets(cctx); err != nil {
				fmt.Fprintf(stderr, "warning: committing offsets of group %s: %s\n", opts.group, cli.Reason(err))
			}
		}()
	}

	td, err := lookupTopic(ctx, kadm.NewClient(cl), opts.topic)
	if err != nil {
		return err
	}
	if opts.partition >= 0 {
		if err := checkPartition(td, opts.partition); err != nil {
			return err
		}
	}

	if opts.group != "" && opts.count == 0 && opts.idle == 0 {
		fmt.Fprintf(stderr, "consuming as group %s until interrupted (Ctrl-C); --count N stops after N records\n", opts.group)
	}

	w := bufio.NewWriter(out)
	var (
		consumed int64
		buf      []byte
		lastSeen = time.Now()
	)
	defer func() { fmt.Fprintf(stderr, "consumed %d records\n", consumed) }()
	for opts.count == 0 || consumed < opts.count {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if opts.idle > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, lastSeen.Add(opts.idle))
		}
		maxRecords := 0
		if opts.count > 0 {
			maxRecords = int(min(opts.count-consumed, 1<<20))
		}
		fetches := cl.PollRecords(pollCtx, maxRecords)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		if err := fetchError(fetches, stderr); err != nil {
			if pollCtx.Err() != nil {
				break // the idle timeout expired
			}
			return err
		}
		for it := fetches.RecordIter(); !it.Done(); {
			rec := it.Next()
			buf = opts.format.Append(buf[:0], rec)
			if !opts.formatEndsLine {
				buf = append(buf, '\n')
			}
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			if opts.group != "" {
				cl.MarkCommitRecords(rec)
			}
			consumed++
			lastSeen = time.Now()
			if opts.count > 0 && consumed >= opts.count {
				break
			}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// fetchError returns the first fatal error in fetches. Data loss (the log was truncated under
// the consumer, which kgo recovers from by resetting) is only reported on stderr; context
// errors, which mean the poll was cut short, are returned so the caller can tell why.
func fetchError(fetches kgo.Fetches, stderr io.Writer) error {
	for _, fe := range fetches.Errors() {
		var dataLoss *kgo.ErrDataLoss
		switch {
		case errors.As(fe.Err, &dataLoss):
			fmt.Fprintf(stderr, "warning: %v\n", fe.Err)
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			return fe.Err
		default:
			return fmt.Errorf("consume topic %s partition %d: %s", fe.Topic, fe.Partition, cli.Reason(fe.Err))
		}
	}
	return nil
}
