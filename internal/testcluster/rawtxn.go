package testcluster

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/replica"
)

// RawTxn is a transactional producer driven by raw requests, so that a test decides when
// offsets are committed in the transaction and when it ends. The client routes each request
// to the transaction or group coordinator.
type RawTxn struct {
	t     testing.TB
	cl    *kgo.Client
	ID    string
	PID   int64
	Epoch int16
}

func rawClient(t testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func rawCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// NewRawTxn initializes the transactional id (InitProducerId) through the seed brokers; opts
// are added to the client's (kgo.MaxVersions to speak older request versions).
func NewRawTxn(t testing.TB, seeds []string, id string, opts ...kgo.Opt) *RawTxn {
	t.Helper()
	cl := rawClient(t, seeds, opts...)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
	resp, err := req.RequestWith(rawCtx(t), cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("InitProducerID: %v", err)
	}
	return &RawTxn{t: t, cl: cl, ID: id, PID: resp.ProducerID, Epoch: resp.ProducerEpoch}
}

// Client is the client the requests go through.
func (x *RawTxn) Client() *kgo.Client { return x.cl }

// CommitOffset adds the group to the transaction (AddOffsetsToTxn) and commits offset of
// topic/0 in it (TxnOffsetCommit).
func (x *RawTxn) CommitOffset(group, topic string, offset int64) {
	x.t.Helper()
	ctx := rawCtx(x.t)
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = x.ID, x.PID, x.Epoch, group
	// CONCURRENT_TRANSACTIONS: the previous transaction's markers are still being written
	// (EndTxn answers before them); clients retry it, and so does this one.
	var err error
	for range 100 {
		var addResp *kmsg.AddOffsetsToTxnResponse
		addResp, err = add.RequestWith(ctx, x.cl)
		if err == nil {
			err = kerr.ErrorForCode(addResp.ErrorCode)
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		x.t.Fatalf("AddOffsetsToTxn: %v", err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = x.ID, group, x.PID, x.Epoch
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, x.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	if err != nil {
		x.t.Fatalf("TxnOffsetCommit: %v", err)
	}
}

// End ends the transaction (EndTxn).
func (x *RawTxn) End(commit bool) {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = x.ID, x.PID, x.Epoch, commit
	resp, err := req.RequestWith(rawCtx(x.t), x.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		x.t.Fatalf("EndTxn (commit %v): %v", commit, err)
	}
	if resp.Version >= 5 {
		// transaction.version 2: the end bumped the epoch, which the next transaction uses.
		if resp.ProducerEpoch <= x.Epoch && resp.ProducerID == x.PID {
			x.t.Fatalf("EndTxn v%d answered producer %d epoch %d after epoch %d: not bumped", resp.Version, resp.ProducerID, resp.ProducerEpoch, x.Epoch)
		}
		x.PID, x.Epoch = resp.ProducerID, resp.ProducerEpoch
	}
}

// TV0Versions are the request versions before transaction.version 2 (EndTxn v4,
// AddOffsetsToTxn v3, TxnOffsetCommit v4): one producer epoch for every transaction.
func TV0Versions() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.EndTxn.Int16(), 4)
	v.SetMaxKeyVersion(kmsg.AddOffsetsToTxn.Int16(), 3)
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	return kgo.MaxVersions(v)
}

// CommittedOffset returns the group's committed offset of partition 0 of topic (-1: none),
// fetched without require_stable.
func CommittedOffset(t testing.TB, seeds []string, group, topic string) int64 {
	t.Helper()
	resps, err := kadm.NewClient(rawClient(t, seeds)).FetchOffsets(rawCtx(t), group)
	if err != nil {
		t.Fatalf("fetch the offsets of %s: %v", group, err)
	}
	r, ok := resps.Lookup(topic, 0)
	if !ok {
		return -1
	}
	if r.Err != nil {
		t.Fatalf("offset of %s %s/0: %v", group, topic, r.Err)
	}
	return r.At
}

// StableOffset fetches the group's offset of topic/0 with require_stable (OffsetFetch v7),
// returning the offset and the partition's error.
func StableOffset(t testing.TB, seeds []string, group, topic string) (int64, error) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, group, true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(rawCtx(t), rawClient(t, seeds, kgo.MaxVersions(kversion.V2_8_0())))
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, kerr.ErrorForCode(p.ErrorCode)
}

// ConsumeTransformProduce runs one franz-go GroupTransactSession transaction: it consumes the
// want records of in as a member of group, produces them to out and ends the transaction with
// its offsets (commit or abort). It returns whether the transaction committed.
func ConsumeTransformProduce(t testing.TB, seeds []string, group, in, out string, want int, commit bool) bool {
	t.Helper()
	ctx := rawCtx(t)
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(seeds...), kgo.TransactionalID("tx-"+group),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.DefaultProduceTopic(out),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < want {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", got, want, in, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			sess.Produce(ctx, &kgo.Record{Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil && commit { // an abort fails the buffered records
					t.Errorf("produce: %v", err)
				}
			})
		})
	}
	committed, err := sess.End(ctx, kgo.TransactionEndTry(commit))
	if err != nil {
		t.Fatalf("end the transaction of %s (commit %v): %v", group, commit, err)
	}
	return committed
}

// TxnBatch builds a transactional v2 batch of producer pid with one record per value.
func TxnBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	ts := time.Now().UnixMilli()
	b := make([]byte, records.HeaderSize, records.HeaderSize+len(recs))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-records.LengthOffset))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:], records.AttrTransactional)
	binary.BigEndian.PutUint32(b[23:], uint32(len(values)-1))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[57:], uint32(len(values)))
	binary.BigEndian.PutUint32(b[17:], records.ComputeCRC(b))
	return b
}

// AllowTransactions is a broker TxnVerifier that lets every transactional batch in, so that a
// test can write one no coordinator knows of (a hanging transaction).
type AllowTransactions struct{}

func (AllowTransactions) VerifyTransaction(replica.TopicPartition, string, int64, int16, bool) error {
	return nil
}
