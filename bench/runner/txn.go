package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The txn workload group (transactions, issue 13): a franz-go transactional producer runs
// transactions back to back, each of txnSizes records, and commits each one: BeginTransaction,
// the records produced, Flush, EndTransaction(commit). It reports the records per second over
// the whole run and the latency of the commits (EndTransaction: EndTxn, the markers and, with
// transaction.version 2 on both brokers, the epoch bump). Kafka 4.1 and Samsa both finalize
// transaction.version 2, so franz-go speaks KIP-890 part 2 to both (Produce v12, EndTxn v5).
const (
	txnRecordSize = 100
	txnParts      = 3
)

// txnSizes are the records per transaction of the two runs.
var txnSizes = []int{100, 1000}

// txnRecords is the record count of a run of transactions of size records: 200,000 records,
// and at least 500 transactions, so that the commit p99 is not just the run's worst commit or
// two (fewer when scaled down).
func (e *env) txnRecords(size int) int64 { return e.count(max(200_000, 500*int64(size))) }

func txnFigures(size int) (rate, p50, p99, cpu figure) {
	id := fmt.Sprintf("txn/%d", size)
	label := fmt.Sprintf("transactions of %d × %d B records, %dp, franz-go, commit each", size, txnRecordSize, txnParts)
	return figure{id + "/rate", label, "rec/s", true},
		figure{id + "/commit-p50", fmt.Sprintf("commit latency p50, %d records per transaction", size), "ms", false},
		figure{id + "/commit-p99", fmt.Sprintf("commit latency p99, %d records per transaction", size), "ms", false},
		figure{id + "/cpu", fmt.Sprintf("broker CPU per 100k records, %d records per transaction", size), "s", false}
}

// txn runs the transactional runs.
func (t *target) txn(ctx context.Context) error {
	for _, size := range txnSizes {
		if err := t.txnRun(ctx, size); err != nil {
			return fmt.Errorf("transactions of %d records: %w", size, err)
		}
	}
	return nil
}

// txnResult is what one transactional run measured.
type txnResult struct {
	records      int64
	seconds      float64
	commitMillis []float64
}

func (t *target) txnRun(ctx context.Context, size int) error {
	topic := fmt.Sprintf("bench-txn-%d", size)
	if err := t.createTopic(ctx, topic, txnParts); err != nil {
		return err
	}
	defer t.deleteTopic(ctx, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.r.seeds...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(fmt.Sprintf("bench-txn-%d-%d-%s", size, t.round, t.r.kind.name)),
		kgo.TransactionTimeout(time.Minute), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(16384), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	// One unmeasured transaction: InitProducerId, the coordinator's partition and the
	// connections are in place before the clock starts.
	if _, err := t.runTxns(ctx, cl, size, int64(size)); err != nil {
		return fmt.Errorf("first transaction: %w", err)
	}
	n := max(t.e.txnRecords(size)/int64(size)*int64(size), int64(size))
	var res txnResult
	_, cpu, _, err := t.measured(func() (toolResult, error) {
		var err error
		res, err = t.runTxns(ctx, cl, size, n)
		return toolResult{}, err
	})
	if err != nil {
		return err
	}
	// Every committed record must be readable by a read_committed consumer: the figure
	// counts only what a reader gets.
	if got, err := t.countCommitted(ctx, topic, res.records+int64(size)); err != nil {
		return err
	} else if got != res.records+int64(size) {
		return fmt.Errorf("a read_committed consumer read %d records, want the %d committed", got, res.records+int64(size))
	}
	rate := float64(res.records) / res.seconds
	lat := summarizePercentiles(res.commitMillis)
	logf("  transactions of %d: %d records in %.2f s, %.0f rec/s; commit p50 %.2f ms, p99 %.2f ms over %d commits; broker CPU %.2f s",
		size, res.records, res.seconds, rate, lat.p50, lat.p99, len(res.commitMillis), cpu)
	fr, f50, f99, fcpu := txnFigures(size)
	r := t.e.results
	r.addRun(t.round, t.r.kind.name, "txn", fmt.Sprintf("franz-go transactions of %d", size),
		toolResult{Records: res.records, RecordsPerSec: rate, P50Ms: lat.p50, P99Ms: lat.p99}, cpu, 0)
	r.add(t.round, t.r.kind.name, fr, rate)
	r.add(t.round, t.r.kind.name, f50, lat.p50)
	r.add(t.round, t.r.kind.name, f99, lat.p99)
	r.add(t.round, t.r.kind.name, fcpu, cpu/float64(res.records)*100_000)
	return nil
}

// runTxns produces n records in transactions of size records, committing each, and times it.
func (t *target) runTxns(ctx context.Context, cl *kgo.Client, size int, n int64) (txnResult, error) {
	value := make([]byte, txnRecordSize)
	res := txnResult{commitMillis: make([]float64, 0, n/int64(size)+1)}
	start := time.Now()
	for res.records < n {
		if err := cl.BeginTransaction(); err != nil {
			return res, err
		}
		var perr atomic.Pointer[error]
		for i := 0; i < size; i++ {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.CompareAndSwap(nil, &err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return res, err
		}
		if err := perr.Load(); err != nil {
			return res, *err
		}
		c := time.Now()
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return res, err
		}
		res.commitMillis = append(res.commitMillis, float64(time.Since(c).Microseconds())/1000)
		res.records += int64(size)
	}
	res.seconds = time.Since(start).Seconds()
	return res, nil
}

// countCommitted reads topic from the start with isolation.level=read_committed until want
// records arrived or nothing more came for 5 s, and returns how many it read.
func (t *target) countCommitted(ctx context.Context, topic string, want int64) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.r.seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var got int64
	for got < want {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			break
		}
		for _, e := range fs.Errors() {
			if e.Err != context.DeadlineExceeded {
				return got, e.Err
			}
		}
		got += int64(fs.NumRecords())
	}
	return got, nil
}

type percentiles struct{ p50, p99 float64 }

// summarizePercentiles returns the 50th and 99th percentiles (nearest rank) of vals.
func summarizePercentiles(vals []float64) percentiles {
	if len(vals) == 0 {
		return percentiles{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return percentiles{at(0.50), at(0.99)}
}
