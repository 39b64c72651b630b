package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/cli"
)

func init() {
	rootCmd.AddCommand(newProduceCmd())
}

// produceOptions are the parsed flags of `samsa produce`.
type produceOptions struct {
	topic        string
	keySeparator string
	headers      []kgo.RecordHeader
	acks         cli.Acks
	compression  kgo.CompressionCodec
	partition    int32 // -1: partition by key
	linger       time.Duration
	// deliveryTimeout bounds how long a record is retried (Kafka's delivery.timeout.ms).
	deliveryTimeout time.Duration
	// retries bounds the retries of a record after retriable errors.
	retries int
}

// newProduceCmd builds `samsa produce`, with fresh flag variables on each call.
func newProduceCmd() *cobra.Command {
	var (
		cf           clientFlags
		keySeparator string
		headers      []string
		acks         string
		compression  string
		partition    int32
		linger       time.Duration
		delivery     time.Duration
		retries      int
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce stdin lines as records, one record per line",
		Long: "Produce reads lines from stdin and produces each as one record to TOPIC. With\n" +
			"--key-separator each line is split at the first separator into key and value (a line\n" +
			"without the separator gets a null key). It waits for every record to be acknowledged\n" +
			"and reports \"produced N records\" on stderr; any failure makes it exit non-zero.\n" +
			"A missing TOPIC is created by the broker if its auto.create.topics.enable is true (the\n" +
			"default), as for Kafka's console producer.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := produceOptions{topic: args[0], keySeparator: keySeparator, partition: partition, linger: linger,
				deliveryTimeout: delivery, retries: retries}
			var err error
			if opts.headers, err = cli.ParseHeaders(headers); err != nil {
				return fmt.Errorf("--header: %w", err)
			}
			if opts.acks, err = cli.ParseAcks(acks); err != nil {
				return fmt.Errorf("--acks: %w", err)
			}
			if opts.compression, err = cli.ParseCompression(compression); err != nil {
				return fmt.Errorf("--compression: %w", err)
			}
			if partition < -1 {
				return fmt.Errorf("invalid --partition %d", partition)
			}
			if linger < 0 {
				return fmt.Errorf("invalid --linger %v", linger)
			}
			if retries < 0 {
				return fmt.Errorf("invalid --retries %d", retries)
			}
			if delivery <= 0 {
				return fmt.Errorf("invalid --delivery-timeout %v", delivery)
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			return produce(ctx, &cf, opts, cmd.InOrStdin(), cmd.ErrOrStderr())
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&keySeparator, "key-separator", "", "split each line into key and value at the first occurrence of this string")
	fs.StringArrayVar(&headers, "header", nil, "header key=value added to every record (repeatable)")
	fs.StringVar(&acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	fs.StringVar(&compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Int32Var(&partition, "partition", -1, "produce every record to this partition (default: partition by key hash)")
	fs.DurationVar(&linger, "linger", 10*time.Millisecond, "how long to wait for a batch to fill before sending it")
	fs.IntVar(&retries, "retries", 3, "how often a record is retried after a retriable error (each retry waits for fresh metadata, about 5 s) before it fails with that error, as the console producer's --message-send-max-retries")
	fs.DurationVar(&delivery, "delivery-timeout", 2*time.Minute, "how long a record may be retried before it fails, as Kafka's delivery.timeout.ms (e.g. while the broker's disk is full)")
	return cmd
}

// produceResult tracks record outcomes reported by kgo's promise callbacks.
type produceResult struct {
	mu struct {
		sync.Mutex
		produced int64
		failed   int64
		firstErr error
	}
}

func (r *produceResult) record(_ *kgo.Record, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.mu.failed++
		if r.mu.firstErr == nil {
			r.mu.firstErr = err
		}
		return
	}
	r.mu.produced++
}

func (r *produceResult) snapshot() (produced, failed int64, firstErr error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.produced, r.mu.failed, r.mu.firstErr
}

// produce sends every line of in to the topic and waits until each record is acknowledged
// (or failed). It stops reading at the first failure; the records already handed to the
// client are still awaited, so the count printed to stderr is exact.
func produce(ctx context.Context, cf *clientFlags, opts produceOptions, in io.Reader, stderr io.Writer) error {
	kopts := []kgo.Opt{
		kgo.DefaultProduceTopic(opts.topic),
		kgo.RequiredAcks(opts.acks.Opt),
		kgo.ProducerBatchCompression(opts.compression),
		kgo.ProducerLinger(opts.linger),
		kgo.RecordDeliveryTimeout(opts.deliveryTimeout),
		// A bounded number of retries, so that a broker that keeps refusing a write (a full
		// disk: KAFKA_STORAGE_ERROR) fails the records with its reason; a timeout would
		// report only that they timed out.
		kgo.RecordRetries(opts.retries),
		// Like Kafka's console producer: a missing topic is created by the broker on the
		// Metadata request when its auto.create.topics.enable allows.
		kgo.AllowAutoTopicCreation(),
	}
	if !opts.acks.All {
		// kgo's idempotent producer requires acks=all.
		kopts = append(kopts, kgo.DisableIdempotentWrite())
	}
	if opts.partition >= 0 {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := cf.connect(ctx, kopts...)
	if err != nil {
		return err
	}
	closeClient := sync.OnceFunc(cl.Close)
	defer closeClient()

	adm := kadm.NewClient(cl)
	td, err := lookupTopic(ctx, adm, opts.topic)
	if errors.Is(err, errNoTopic) {
		return topicNotCreated(ctx, adm, opts.topic)
	}
	if err != nil {
		return err
	}
	if opts.partition >= 0 {
		if err := checkPartition(td, opts.partition); err != nil {
			return err
		}
	}

	var (
		res     produceResult
		pending sync.WaitGroup // one count per record whose promise has not run yet
	)
	promise := func(r *kgo.Record, err error) {
		res.record(r, err)
		pending.Done()
	}
	lines := cli.NewLineReader(in)
	var readErr error
	for {
		if _, failed, _ := res.snapshot(); failed > 0 || ctx.Err() != nil {
			break
		}
		line, err := lines.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		rec := cli.RecordFromLine(line, opts.keySeparator, opts.headers)
		if opts.partition >= 0 {
			rec.Partition = opts.partition
		}
		pending.Add(1)
		cl.Produce(ctx, rec, promise)
	}
	// Flush waits until every record is acknowledged or failed, unless ctx is canceled (an
	// interrupt); then closing the client fails what is still buffered or in flight. Either
	// way every promise has run once pending is done, so the counts below are final.
	if err := cl.Flush(ctx); err != nil {
		closeClient()
	}
	pending.Wait()

	produced, failed, firstErr := res.snapshot()
	fmt.Fprintf(stderr, "produced %d records\n", produced)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case failed > 0:
		return fmt.Errorf("failed to produce %d records to topic %s: %s", failed, opts.topic, cli.Reason(firstErr))
	case readErr != nil:
		return readErr
	}
	return nil
}

// topicNotCreated explains why a topic is missing although the metadata request asked the
// broker to create it: the broker's auto.create.topics.enable is false, or the creation failed.
func topicNotCreated(ctx context.Context, adm *kadm.Client, topic string) error {
	const hint = "create it with samsa topic create"
	enabled, err := autoCreateEnabled(ctx, adm)
	switch {
	case err != nil:
		return fmt.Errorf("topic %q does not exist and the broker did not create it (its auto.create.topics.enable is unknown: %s); %s", topic, cli.Reason(err), hint)
	case !enabled:
		return fmt.Errorf("topic %q does not exist and the broker does not create topics automatically (auto.create.topics.enable=false); %s", topic, hint)
	}
	return fmt.Errorf("topic %q does not exist and the broker failed to create it automatically (see its log); %s", topic, hint)
}

// autoCreateEnabled reads auto.create.topics.enable from the configs of the first broker.
func autoCreateEnabled(ctx context.Context, adm *kadm.Client) (bool, error) {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return false, fmt.Errorf("list brokers: %w", err)
	}
	if len(brokers) == 0 {
		return false, errors.New("no brokers in the metadata")
	}
	configs, err := adm.DescribeBrokerConfigs(ctx, brokers[0].NodeID)
	if err != nil {
		return false, fmt.Errorf("describe configs of broker %d: %w", brokers[0].NodeID, err)
	}
	const key = "auto.create.topics.enable"
	for _, rc := range configs {
		if rc.Err != nil {
			return false, fmt.Errorf("describe configs of broker %d: %w", brokers[0].NodeID, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return strconv.ParseBool(*c.Value)
			}
		}
	}
	return false, fmt.Errorf("broker %d does not report %s", brokers[0].NodeID, key)
}
