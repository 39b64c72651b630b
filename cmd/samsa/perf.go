package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/perf"
)

func init() {
	rootCmd.AddCommand(newPerfCmd())
}

// newPerfCmd builds `samsa perf` and its subcommands: load generators in the manner of Kafka's
// kafka-producer-perf-test and kafka-consumer-perf-test, plus an end-to-end latency test.
func newPerfCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "perf",
		Short: "Measure a cluster: produce and consume throughput, end-to-end latency",
		Long: "Load generators in the manner of Kafka's perf tools, for any Kafka-compatible cluster.\n" +
			"Each prints a progress line every --report-interval and a final summary; --json adds\n" +
			"the summary as one JSON line at the end.",
	}
	cmd.AddCommand(newPerfProduceCmd(), newPerfConsumeCmd(), newPerfE2ECmd())
	return cmd
}

// perfCommon are the flags every perf subcommand takes.
type perfCommon struct {
	cf         clientFlags
	topic      string
	records    int64
	recordSize int
	partitions int32
	interval   time.Duration
	json       bool
	clientLog  string
}

func (c *perfCommon) register(fs *pflag.FlagSet, records int64) {
	c.cf.register(fs)
	fs.StringVar(&c.topic, "topic", "", "topic to use (required)")
	fs.Int64Var(&c.records, "records", records, "number of records")
	fs.IntVar(&c.recordSize, "record-size", 100, "value size of each record in bytes")
	fs.Int32Var(&c.partitions, "partitions", 1, "partitions of the topic when it has to be created")
	fs.DurationVar(&c.interval, "report-interval", 5*time.Second, "how often to print a progress line")
	fs.BoolVar(&c.json, "json", false, "also print the final summary as one JSON line")
	fs.StringVar(&c.clientLog, "client-log", "", "log the client's own events to stderr at this level: error, warn, info or debug")
}

// connect connects with the client logger asked for by --client-log.
func (c *perfCommon) connect(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	if c.clientLog != "" {
		var lvl kgo.LogLevel
		switch c.clientLog {
		case "error":
			lvl = kgo.LogLevelError
		case "warn":
			lvl = kgo.LogLevelWarn
		case "info":
			lvl = kgo.LogLevelInfo
		case "debug":
			lvl = kgo.LogLevelDebug
		default:
			return nil, fmt.Errorf("invalid --client-log %q: expected error, warn, info or debug", c.clientLog)
		}
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, lvl, nil)))
	}
	return c.cf.connect(ctx, opts...)
}

func (c *perfCommon) validate() error {
	switch {
	case c.topic == "":
		return errors.New("--topic is required")
	case c.records <= 0:
		return fmt.Errorf("invalid --records %d", c.records)
	case c.recordSize < 0:
		return fmt.Errorf("invalid --record-size %d", c.recordSize)
	case c.partitions <= 0:
		return fmt.Errorf("invalid --partitions %d", c.partitions)
	case c.interval <= 0:
		return fmt.Errorf("invalid --report-interval %v", c.interval)
	}
	return nil
}

// producerFlags are the producer settings of `perf produce` and `perf e2e`.
type producerFlags struct {
	throughput    float64
	acks          string
	compression   string
	batchMaxBytes int32
	linger        time.Duration
	maxInflight   int
}

func (p *producerFlags) register(fs *pflag.FlagSet, throughput float64, linger time.Duration) {
	fs.Float64Var(&p.throughput, "throughput", throughput, "records per second to produce at most (-1: no limit)")
	fs.StringVar(&p.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	fs.StringVar(&p.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Int32Var(&p.batchMaxBytes, "batch-max-bytes", 16384, "largest record batch (Kafka's batch.size; its default is 16384)")
	fs.DurationVar(&p.linger, "linger", linger, "how long a batch may wait to fill (Kafka's linger.ms)")
	fs.IntVar(&p.maxInflight, "max-inflight", 5, "produce requests in flight per broker when acks is not all (Kafka's max.in.flight.requests.per.connection); acks=all uses the idempotent producer's 5")
}

// kgoOpts returns the client options of these producer settings.
func (p *producerFlags) kgoOpts() ([]kgo.Opt, error) {
	acks, err := cli.ParseAcks(p.acks)
	if err != nil {
		return nil, fmt.Errorf("--acks: %w", err)
	}
	codec, err := cli.ParseCompression(p.compression)
	if err != nil {
		return nil, fmt.Errorf("--compression: %w", err)
	}
	switch {
	case p.batchMaxBytes < 1024:
		return nil, fmt.Errorf("invalid --batch-max-bytes %d (at least 1024)", p.batchMaxBytes)
	case p.linger < 0:
		return nil, fmt.Errorf("invalid --linger %v", p.linger)
	case p.maxInflight < 1:
		return nil, fmt.Errorf("invalid --max-inflight %d", p.maxInflight)
	}
	opts := []kgo.Opt{
		kgo.RequiredAcks(acks.Opt),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(p.batchMaxBytes),
		kgo.ProducerLinger(p.linger),
	}
	if !acks.All {
		// kgo's idempotent producer requires acks=all; without it, allow as many requests in
		// flight as Kafka's Java producer does by default.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(p.maxInflight))
	}
	return opts, nil
}

// ensureTopic creates topic with the given partitions (replication factor 1 is not forced: the
// cluster's default is used) unless it exists, and returns its partition count.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) (int, error) {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, cli.ResponseError("create topic", topic, err, "")
	}
	// The topic may take a moment to appear in every broker's metadata, and a partition
	// leader a moment more to serve it: produce would meet NOT_LEADER_FOR_PARTITION on some
	// partitions and back off on them, which skews the run. Wait until every partition
	// answers ListOffsets.
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := lookupTopic(ctx, adm, topic)
		if err == nil && len(td.Partitions) > 0 {
			var ends kadm.ListedOffsets
			if ends, err = adm.ListEndOffsets(ctx, topic); err == nil {
				err = ends.Error()
			}
			if err == nil {
				return len(td.Partitions), nil
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("topic %q has no partitions", topic)
			}
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reportProgress prints rec's window every interval until stop is closed.
func reportProgress(w io.Writer, verb string, rec *perf.Recorder, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fmt.Fprintln(w, perf.ProgressLine(verb, rec.Window()))
		}
	}
}

// startProgress runs reportProgress in a goroutine; the returned function stops it and waits.
func startProgress(w io.Writer, verb string, rec *perf.Recorder, interval time.Duration) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { reportProgress(w, verb, rec, interval, stop) })
	return sync.OnceFunc(func() { close(stop); wg.Wait() })
}

// printSummary prints the summary line and, when asked, the JSON form.
func printSummary(w io.Writer, verb string, res perf.Result, asJSON bool, extra map[string]any) error {
	fmt.Fprintln(w, perf.SummaryLine(verb, res))
	if !asJSON {
		return nil
	}
	out := map[string]any{"result": res}
	for k, v := range extra {
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, string(b))
	return nil
}

// payload returns n random upper-case letters, as kafka-producer-perf-test sends: one value
// shared by every record (the client never modifies it).
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('A' + rand.IntN(26))
	}
	return b
}

func newPerfProduceCmd() *cobra.Command {
	var (
		c    perfCommon
		p    producerFlags
		keys int
	)
	cmd := &cobra.Command{
		Use:   "produce --topic TOPIC",
		Short: "Produce records as fast as allowed and report throughput and ack latency",
		Long: "Produce sends --records records of --record-size bytes (no key, or with --keys N a key\n" +
			"drawn at random from N keys) to --topic, creating it with --partitions partitions if it\n" +
			"does not exist, at most --throughput records per second. It reports records/s, MB/s\n" +
			"(MiB, keys included) and the latency of each record from the moment it is handed to the\n" +
			"client to its acknowledgement (avg, max, p50/p95/p99/p99.9), like\n" +
			"kafka-producer-perf-test. It exits non-zero if any record failed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validate(); err != nil {
				return err
			}
			if keys < 0 {
				return fmt.Errorf("invalid --keys %d", keys)
			}
			opts, err := p.kgoOpts()
			if err != nil {
				return err
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			return perfProduce(ctx, &c, p.throughput, perfKeys(keys), opts, cmd.OutOrStdout())
		},
	}
	c.register(cmd.Flags(), 1_000_000)
	p.register(cmd.Flags(), -1, 5*time.Millisecond)
	cmd.Flags().IntVar(&keys, "keys", 0, "give each record a key drawn uniformly at random from this many (key-00000000, ...; 0: no key), e.g. updates to a compacted topic")
	return cmd
}

// sentAt carries the moment a record was handed to the client to its promise. The record's
// Timestamp cannot: franz-go truncates it to milliseconds (the wire's unit), which would add
// up to a millisecond to every latency, half a millisecond on average.
type sentAt struct {
	context.Context
	at time.Time
}

// ackLatency is how long r took from being handed to the client until now, its promise.
func ackLatency(r *kgo.Record, now time.Time) time.Duration {
	if s, ok := r.Context.(*sentAt); ok {
		return now.Sub(s.at)
	}
	return now.Sub(r.Timestamp)
}

// perfKeys returns the n keys of `perf produce --keys` (nil for none).
func perfKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%08d", i)
	}
	return keys
}

func perfProduce(ctx context.Context, c *perfCommon, throughput float64, keys [][]byte, opts []kgo.Opt, out io.Writer) error {
	cl, err := c.connect(ctx, append(opts, kgo.DefaultProduceTopic(c.topic))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := ensureTopic(ctx, cl, c.topic, c.partitions); err != nil {
		return err
	}

	value := payload(c.recordSize)
	rec := perf.NewRecorder()
	var firstErr atomic.Pointer[error]
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			rec.Error()
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		rec.Record(len(r.Value)+len(r.Key), ackLatency(r, time.Now()))
	}
	limiter := perf.NewLimiter(throughput)
	stopProgress := startProgress(out, "sent", rec, c.interval)
	defer stopProgress()
	for i := int64(0); i < c.records; i++ {
		if err := limiter.Wait(ctx); err != nil {
			break
		}
		now := time.Now()
		r := &kgo.Record{Value: value, Timestamp: now, Context: &sentAt{ctx, now}}
		if len(keys) > 0 {
			r.Key = keys[rand.IntN(len(keys))]
		}
		cl.Produce(ctx, r, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	stopProgress()
	res := rec.Total()
	if err := printSummary(out, "sent", res, c.json, nil); err != nil {
		return err
	}
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("%d of %d records failed: %s", res.Errors, c.records, cli.Reason(*e))
	}
	return ctx.Err()
}

func newPerfConsumeCmd() *cobra.Command {
	var (
		c        perfCommon
		timeout  time.Duration
		maxBytes int32
		partMax  int32
	)
	cmd := &cobra.Command{
		Use:   "consume --topic TOPIC",
		Short: "Consume records from the beginning of a topic and report throughput",
		Long: "Consume reads --topic from the beginning of every partition, without a consumer group,\n" +
			"until --records records were received, and reports records/s and MB/s (MiB of keys\n" +
			"and values) like kafka-consumer-perf-test. The clock starts once the broker answered\n" +
			"and stops at the last record. It fails if no record arrives for --timeout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validate(); err != nil {
				return err
			}
			if timeout <= 0 || maxBytes <= 0 || partMax <= 0 {
				return errors.New("--timeout, --fetch-max-bytes and --fetch-max-partition-bytes must be positive")
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			return perfConsume(ctx, &c, timeout, []kgo.Opt{
				kgo.ConsumeTopics(c.topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(maxBytes),
				kgo.FetchMaxPartitionBytes(partMax),
			}, cmd.OutOrStdout())
		},
	}
	c.register(cmd.Flags(), 1_000_000)
	fs := cmd.Flags()
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "fail when no record arrives for this long")
	fs.Int32Var(&maxBytes, "fetch-max-bytes", 50<<20, "largest fetch response (Kafka's fetch.max.bytes)")
	fs.Int32Var(&partMax, "fetch-max-partition-bytes", 1<<20, "largest data per partition in a fetch (Kafka's max.partition.fetch.bytes)")
	return cmd
}

func perfConsume(ctx context.Context, c *perfCommon, timeout time.Duration, opts []kgo.Opt, out io.Writer) error {
	cl, err := c.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec := perf.NewRecorder()
	stopProgress := startProgress(out, "received", rec, c.interval)
	defer stopProgress()
	var received int64
	lastProgress := time.Now()
	for received < c.records {
		pollCtx, cancel := context.WithDeadline(ctx, lastProgress.Add(timeout))
		fs := cl.PollRecords(pollCtx, int(min(c.records-received, 10000)))
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d records: %w", received, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return fmt.Errorf("fetching %s[%d]: %s", fe.Topic, fe.Partition, cli.Reason(fe.Err))
			}
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			if received < c.records {
				rec.Record(len(r.Key)+len(r.Value), -1)
				received++
				n++
			}
		})
		if n > 0 {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) >= timeout {
			return fmt.Errorf("no record for %v after %d of %d records", timeout, received, c.records)
		}
	}
	stopProgress()
	return printSummary(out, "received", rec.Total(), c.json, nil)
}

func newPerfE2ECmd() *cobra.Command {
	var (
		c       perfCommon
		p       producerFlags
		warmup  time.Duration
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "e2e --topic TOPIC",
		Short: "Produce at a fixed rate while consuming, and report end-to-end latency",
		Long: "E2e produces --records records at --throughput records/s to --topic (created with\n" +
			"--partitions if missing) while a second client consumes them from the end offsets\n" +
			"taken before the first record. Each record's value starts with the produce time in\n" +
			"nanoseconds (so --record-size is at least 8); its latency is the time from the\n" +
			"moment it was handed to the producer to the moment the consumer received it. Records\n" +
			"produced during --warmup are not measured. The percentiles are of that latency; the\n" +
			"run fails if a record is missing --timeout after the last one was acknowledged.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validate(); err != nil {
				return err
			}
			if c.recordSize < 8 {
				return fmt.Errorf("invalid --record-size %d: e2e needs at least 8 bytes for the timestamp", c.recordSize)
			}
			if warmup < 0 || timeout <= 0 {
				return errors.New("--warmup must not be negative and --timeout must be positive")
			}
			opts, err := p.kgoOpts()
			if err != nil {
				return err
			}
			ctx, stop := commandContext(cmd)
			defer stop()
			return perfE2E(ctx, &c, p.throughput, opts, warmup, timeout, cmd.OutOrStdout())
		},
	}
	c.register(cmd.Flags(), 50_000)
	p.register(cmd.Flags(), 5000, 0)
	fs := cmd.Flags()
	fs.DurationVar(&warmup, "warmup", time.Second, "leave out records produced in this first stretch of the run")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the last records to arrive")
	return cmd
}

func perfE2E(ctx context.Context, c *perfCommon, throughput float64, popts []kgo.Opt, warmup, timeout time.Duration, out io.Writer) error {
	prod, err := c.connect(ctx, append(popts, kgo.DefaultProduceTopic(c.topic))...)
	if err != nil {
		return err
	}
	defer prod.Close()
	if _, err := ensureTopic(ctx, prod, c.topic, c.partitions); err != nil {
		return err
	}
	ends, err := kadm.NewClient(prod).ListEndOffsets(ctx, c.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return cli.ResponseError("list end offsets", c.topic, err, "")
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cons, err := c.connect(ctx, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: start}))
	if err != nil {
		return err
	}
	defer cons.Close()

	rec := perf.NewRecorder()
	stopProgress := startProgress(out, "received", rec, c.interval)
	defer stopProgress()

	// The consumer counts every record and measures those produced after the warm-up.
	var (
		measureFrom           atomic.Int64 // unix nanoseconds; 0 until the producer starts
		received              atomic.Int64
		consErr               = make(chan error, 1)
		consCtx, stopConsumer = context.WithCancel(ctx)
	)
	defer stopConsumer()
	go func() {
		for {
			fs := cons.PollFetches(consCtx)
			now := time.Now().UnixNano()
			if consCtx.Err() != nil {
				consErr <- nil
				return
			}
			for _, fe := range fs.Errors() {
				consErr <- fmt.Errorf("fetching %s[%d]: %s", fe.Topic, fe.Partition, cli.Reason(fe.Err))
				return
			}
			from := measureFrom.Load()
			fs.EachRecord(func(r *kgo.Record) {
				received.Add(1)
				if len(r.Value) < 8 {
					rec.Error()
					return
				}
				sent := int64(binary.BigEndian.Uint64(r.Value))
				if sent >= from {
					rec.Record(len(r.Key)+len(r.Value), time.Duration(now-sent))
				}
			})
		}
	}()

	var produced, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		produced.Add(1)
	}
	limiter := perf.NewLimiter(throughput)
	tmpl := payload(c.recordSize)
	began := time.Now()
	measureFrom.Store(began.Add(warmup).UnixNano())
	rec.Restart()
	for i := int64(0); i < c.records; i++ {
		if err := limiter.Wait(ctx); err != nil {
			break
		}
		v := make([]byte, len(tmpl))
		copy(v, tmpl)
		now := time.Now()
		binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
		prod.Produce(ctx, &kgo.Record{Value: v, Timestamp: now}, promise)
	}
	if err := prod.Flush(ctx); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	want := produced.Load()
	deadline := time.Now().Add(timeout)
	for received.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-consErr:
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopConsumer()
	if err := <-consErr; err != nil {
		return err
	}
	stopProgress()
	// Records and latency are those measured (after the warm-up); the rates are of every
	// record received over the whole run.
	got := received.Load()
	res := rec.Total()
	res.Seconds = time.Since(began).Seconds()
	res.RecordsPerSec = float64(got) / res.Seconds
	res.MBPerSec = float64(got) * float64(c.recordSize) / perf.MiB / res.Seconds
	extra := map[string]any{"produced": want, "received": got, "produce_errors": failed.Load(), "target_rate": throughput}
	if err := printSummary(out, "received", res, c.json, extra); err != nil {
		return err
	}
	switch {
	case firstErr.Load() != nil:
		return fmt.Errorf("%d records failed to produce: %s", failed.Load(), cli.Reason(*firstErr.Load()))
	case got < want:
		return fmt.Errorf("received %d of %d acknowledged records within %v", got, want, timeout)
	}
	return ctx.Err()
}
