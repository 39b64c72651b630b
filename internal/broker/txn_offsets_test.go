package broker_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// committedOffset returns the group's committed offset of partition 0 of topic (-1: none).
func committedOffset(t *testing.T, n *testcluster.Node, group, topic string) int64 {
	return testcluster.CommittedOffset(t, []string{n.Addr()}, group, topic)
}

// waitCommittedOffset waits for the group's committed offset of topic/0 to be want: EndTxn
// answers once the outcome is logged, and the markers are written right after.
func waitCommittedOffset(t *testing.T, n *testcluster.Node, group, topic string, want int64) {
	t.Helper()
	waitUntil(t, 30*time.Second, fmt.Sprintf("%s commits offset %d of %s", group, want, topic), func() bool {
		return committedOffset(t, n, group, topic) == want
	})
}

// TestTxnOffsetCommitConsumeTransformProduce: franz-go consume-transform-produce sessions
// commit their group's offsets in the transaction (AddOffsetsToTxn, TxnOffsetCommit): after
// a commit the group's committed offset is past the records consumed, after an abort the
// group has none (the pending offsets were dropped with the ABORT marker), and a restart of
// the node (replaying __consumer_offsets, markers included) keeps both outcomes. The output
// topic holds, read_committed, the records of the committed transaction only.
func TestTxnOffsetCommitConsumeTransformProduce(t *testing.T) {
	n := startTxnNode(t)
	const in, out = "ctp-in", "ctp-out"
	createTopic(t, n, in, 1, nil)
	createTopic(t, n, out, 1, nil)
	ctx := ctxT(t)
	prod := newClient(t, n, kgo.DefaultProduceTopic(in))
	for i := range 4 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	if testcluster.ConsumeTransformProduce(t, []string{n.Addr()}, "g-abort", in, out, 4, false) {
		t.Fatal("the aborted transaction committed")
	}
	if got := committedOffset(t, n, "g-abort", in); got != -1 {
		t.Fatalf("g-abort committed offset %d after its transaction aborted, want none", got)
	}
	if !testcluster.ConsumeTransformProduce(t, []string{n.Addr()}, "g-commit", in, out, 4, true) {
		t.Fatal("the transaction did not commit")
	}
	check := func(when string) {
		t.Helper()
		if got := committedOffset(t, n, "g-commit", in); got != 4 {
			t.Fatalf("%s: g-commit committed offset %d, want 4", when, got)
		}
		if got := committedOffset(t, n, "g-abort", in); got != -1 {
			t.Fatalf("%s: g-abort committed offset %d, want none", when, got)
		}
	}
	waitCommittedOffset(t, n, "g-commit", in, 4)
	check("after the transactions")
	n.Restart()
	check("after a restart")
	if got := pollValues(t, n, out, 4, kgo.FetchIsolationLevel(kgo.ReadCommitted())); len(got) != 4 {
		t.Fatalf("read_committed output %v, want the 4 committed records", got)
	}
}

// TestTxnOffsetCommitPendingUntilMarker: offsets committed in a transaction are pending until
// its marker: OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile (and
// still after a restart, the marker not being in the log), a plain fetch does not see them;
// the ABORT marker drops them, the COMMIT marker applies them, and a restart replays both.
func TestTxnOffsetCommitPendingUntilMarker(t *testing.T) {
	n := startTxnNode(t)
	const topic = "pend-in"
	createTopic(t, n, topic, 1, nil)

	aborted := testcluster.NewRawTxn(t, []string{n.Addr()}, "tx-pend-abort")
	aborted.CommitOffset("g-pend-abort", topic, 7)
	if _, err := testcluster.StableOffset(t, []string{n.Addr()}, "g-pend-abort", topic); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("require_stable fetch of a pending offset: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	if got := committedOffset(t, n, "g-pend-abort", topic); got != -1 {
		t.Fatalf("pending offset %d visible before the marker", got)
	}
	aborted.End(false)

	committed := testcluster.NewRawTxn(t, []string{n.Addr()}, "tx-pend-commit")
	committed.CommitOffset("g-pend-commit", topic, 9)
	committed.End(true)

	open := testcluster.NewRawTxn(t, []string{n.Addr()}, "tx-pend-open")
	open.CommitOffset("g-pend-open", topic, 11)

	check := func(when string) {
		t.Helper()
		if got := committedOffset(t, n, "g-pend-abort", topic); got != -1 {
			t.Fatalf("%s: aborted offset %d visible", when, got)
		}
		if got, err := testcluster.StableOffset(t, []string{n.Addr()}, "g-pend-commit", topic); err != nil || got != 9 {
			t.Fatalf("%s: committed offset %d (%v), want 9", when, got, err)
		}
		if _, err := testcluster.StableOffset(t, []string{n.Addr()}, "g-pend-open", topic); !errors.Is(err, kerr.UnstableOffsetCommit) {
			t.Fatalf("%s: open transaction's offset: %v, want UNSTABLE_OFFSET_COMMIT", when, err)
		}
		if got := committedOffset(t, n, "g-pend-open", topic); got != -1 {
			t.Fatalf("%s: open transaction's offset %d visible", when, got)
		}
	}
	check("before a restart")
	n.Restart()
	check("after a restart")
}

// TestTxnOffsetCommitSameEpoch: one producer epoch commits offsets in two transactions in a
// row (as a GroupTransactSession before transaction.version 2 does); the second batch is
// numbered after the first (not taken for its duplicate), so a restart replays the second
// offset.
func TestTxnOffsetCommitSameEpoch(t *testing.T) {
	n := startTxnNode(t)
	const topic = "epoch-in"
	createTopic(t, n, topic, 1, nil)
	x := testcluster.NewRawTxn(t, []string{n.Addr()}, "tx-epoch", testcluster.TV0Versions())
	x.CommitOffset("g-epoch", topic, 3)
	x.End(true)
	x.CommitOffset("g-epoch", topic, 5)
	x.End(true)
	waitCommittedOffset(t, n, "g-epoch", topic, 5)
	n.Restart()
	if got := committedOffset(t, n, "g-epoch", topic); got != 5 {
		t.Fatalf("after a restart: committed offset %d, want 5", got)
	}
}
