package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The exactly-once clients of the campaign: the copier and a read_committed reader of its
// output (see eos.go for the checker).

const (
	eosOutput  = "campaign-eos-out"
	eosGroup   = "campaign-eos"
	eosTxnID   = "campaign-eos-copier"
	endMarkers = "~end"
)

// copier is a consume-transform-produce loop in transactions (franz-go's
// GroupTransactSession): it reads the input topic read_committed as a member of eosGroup and
// writes CopyValue(input, txn) to eosOutput, the group's offsets committed in each
// transaction. It records each transaction's outcome and size.
type copier struct {
	t    *testing.T
	mu   sync.Mutex
	txns map[string]CopierTxn
	errs int // End or session errors seen (retried)
	stop func()
}

func startCopier(t *testing.T, seeds []string, input string) *copier {
	c := &copier{t: t, txns: map[string]CopierTxn{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		seq := 0
		for ctx.Err() == nil {
			s, err := kgo.NewGroupTransactSession(
				kgo.SeedBrokers(seeds...),
				kgo.TransactionalID(eosTxnID),
				kgo.TransactionTimeout(30*time.Second),
				kgo.ConsumerGroup(eosGroup),
				kgo.ConsumeTopics(input),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.RequireStableFetchOffsets(),
				kgo.DefaultProduceTopic(eosOutput),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.MetadataMinAge(250*time.Millisecond),
				kgo.FetchMaxWait(200*time.Millisecond),
			)
			if err != nil {
				t.Errorf("copier: %v", err)
				return
			}
			seq = c.run(ctx, s, seq)
			closeBounded(s.Close)
		}
	}()
	c.stop = func() { cancel(); <-done }
	return c
}

// run copies with one session until ctx ends or the session fails for good (then a new one
// starts, as an application restarts its copier).
func (c *copier) run(ctx context.Context, s *kgo.GroupTransactSession, seq int) int {
	for ctx.Err() == nil {
		fs := s.PollFetches(ctx)
		if ctx.Err() != nil {
			return seq
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			c.noteErr("begin", err)
			return seq
		}
		seq++
		name := fmt.Sprintf("t%d", seq)
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			out := &kgo.Record{Partition: r.Partition, Value: []byte(CopyValue(string(r.Value), name))}
			s.Produce(context.Background(), out, nil)
		})
		ectx, cancel := context.WithTimeout(context.Background(), time.Minute)
		committed, err := s.End(ectx, kgo.TryCommit)
		cancel()
		outcome := TxnAborted
		switch {
		case err != nil:
			outcome = TxnUnknown
			c.noteErr("end", err)
		case committed:
			outcome = TxnCommitted
		}
		c.mu.Lock()
		c.txns[name] = CopierTxn{Outcome: outcome, Records: n}
		c.mu.Unlock()
		if err != nil && errors.Is(err, kgo.ErrClientClosed) {
			return seq
		}
	}
	return seq
}

func (c *copier) noteErr(what string, err error) {
	c.mu.Lock()
	c.errs++
	k := c.errs
	c.mu.Unlock()
	if k <= 10 {
		c.t.Logf("copier %s: %v (retried)", what, err)
	}
}

// closeBounded runs a client's close for at most 30 s: when a failed campaign stops its
// clients while a node is still cut off, a close can wait on requests the network never
// answers, and the test must still end (the cluster's own cleanup then kills the nodes).
func closeBounded(closeFn func()) {
	done := make(chan struct{})
	go func() { closeFn(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// outcomes returns the copier's transactions and how many ended each way.
func (c *copier) outcomes() (map[string]CopierTxn, map[TxnOutcome]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]CopierTxn, len(c.txns))
	count := map[TxnOutcome]int{}
	for k, v := range c.txns {
		out[k] = v
		count[v.Outcome]++
	}
	return out, count
}

// waitCopied waits (bounded) until the copier's group has committed the input's end offsets.
func waitCopied(ctx context.Context, seeds []string, input string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last string
	for ctx.Err() == nil {
		ends, err := adm.ListEndOffsets(ctx, input)
		if err == nil {
			var got kadm.OffsetResponses
			got, err = adm.FetchOffsets(ctx, eosGroup)
			if err == nil {
				behind := 0
				ends.Each(func(o kadm.ListedOffset) {
					if c, ok := got.Lookup(input, o.Partition); !ok || c.At < o.Offset {
						behind++
					}
				})
				if behind == 0 {
					return nil
				}
				last = fmt.Sprintf("%d partitions behind", behind)
			}
		}
		if err != nil {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the copier did not catch up with the input: %s", last)
}

// readCommitted reads every partition of topic from the start with read_committed up to an
// end marker that a plain producer appends to each partition first (the copier has stopped, so
// every transaction before it is complete and the marker becomes visible); the markers are
// left out.
func readCommitted(ctx context.Context, seeds []string, topic string, partitions int) (map[int32][]Record, error) {
	p, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	for i := range partitions {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i), Value: []byte(endMarkers)}).FirstErr(); err != nil {
			p.Close()
			return nil, fmt.Errorf("end marker: %w", err)
		}
	}
	p.Close()
	offsets := map[int32]kgo.Offset{}
	for i := range partitions {
		offsets[int32(i)] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[int32][]Record{}
	ended := map[int32]bool{}
	for len(ended) < partitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read_committed read of %s: %w (partitions at their end marker: %v)", topic, ctx.Err(), ended)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == endMarkers {
				ended[r.Partition] = true
				return
			}
			out[r.Partition] = append(out[r.Partition], Record{Offset: r.Offset, Value: string(r.Value)})
		})
	}
	return out, nil
}
