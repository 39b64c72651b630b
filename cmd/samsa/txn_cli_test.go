package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestTxnCommands: samsa txn list / describe show an open transaction; a transactional batch
// no coordinator knows of (written past the verifier) holds the partition's last stable
// offset; samsa txn producers shows it with its start offset, samsa txn hanging finds it and
// not the open transaction of a live producer, and samsa txn abort --start-offset releases
// the last stable offset.
func TestTxnCommands(t *testing.T) {
	node := testcluster.Start(t)
	brokers := "--brokers=" + node.Addr()
	run := func(args ...string) string {
		t.Helper()
		return mustRunCLI(t, append(args, brokers)...)
	}
	const topic, stuckPID = "held", 4242
	run("topic", "create", topic, "--partitions", "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The hanging transaction at offset 0.
	node.Server().Broker().SetTxnVerifier(testcluster.AllowTransactions{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(node.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testcluster.TxnBatch(stuckPID, 0, 0, "stuck")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("produce the hanging batch: %v", err)
	}

	// A live transaction after it, open.
	prod, err := kgo.NewClient(kgo.SeedBrokers(node.Addr()), kgo.TransactionalID("tx-cli"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("live")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	out := run("txn", "list")
	if !strings.Contains(out, "tx-cli") || !strings.Contains(out, "Ongoing") {
		t.Fatalf("txn list:\n%s", out)
	}
	out = run("txn", "describe", "tx-cli")
	if !strings.Contains(out, "Ongoing") || !strings.Contains(out, topic+"-0") {
		t.Fatalf("txn describe:\n%s", out)
	}
	out = run("txn", "producers", "--topic", topic, "--partition", "0")
	if !hasRow(out, "4242", "0") || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		t.Fatalf("txn producers: want the stuck producer with its transaction at offset 0, and the live one:\n%s", out)
	}
	out = run("txn", "hanging", "--topic", topic, "--max-age", "0s")
	if !hasRow(out, "4242", "0") || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Fatalf("txn hanging: want the stuck producer only:\n%s", out)
	}

	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	lso := func() int64 {
		t.Helper()
		offs, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup(topic, 0)
		return o.Offset
	}
	if got := lso(); got != 0 {
		t.Fatalf("last stable offset %d with the hanging transaction, want 0", got)
	}
	out = run("txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
	if !strings.Contains(out, "aborted the transaction of producer 4242") {
		t.Fatalf("txn abort: %s", out)
	}
	// The stuck batch, the live record, its marker and the abort marker: the LSO is the end.
	deadline := time.Now().Add(30 * time.Second)
	for got := lso(); got != 4; got = lso() {
		if time.Now().After(deadline) {
			t.Fatalf("last stable offset %d after the abort, want 4", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out = run("txn", "hanging", "--topic", topic, "--max-age", "0s")
	if len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Fatalf("txn hanging after the abort:\n%s", out)
	}
	if _, _, err := runCLI(t, "", "txn", "abort", "--topic", topic, "--start-offset", "7", brokers); err == nil ||
		!strings.Contains(err.Error(), "no open transaction starts at offset 7") {
		t.Fatalf("abort of no transaction: %v", err)
	}
}

// hasRow reports whether a producers table has a row of producer pid whose transaction
// starts at start.
func hasRow(out, pid, start string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 8 && f[2] == pid && f[7] == start {
			return true
		}
	}
	return false
}
