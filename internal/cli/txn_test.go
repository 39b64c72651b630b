package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestWriteTransactionTables(t *testing.T) {
	var b strings.Builder
	ls := kadm.ListedTransactions{
		"b": {TxnID: "b", ProducerID: 7, State: "Ongoing", Coordinator: 2},
		"a": {TxnID: "a", ProducerID: 3, State: "CompleteCommit", Coordinator: 1},
	}
	if err := WriteTransactionList(&b, ls); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "a ") || !strings.Contains(lines[2], "Ongoing") {
		t.Fatalf("list:\n%s", b.String())
	}

	b.Reset()
	now := time.UnixMilli(1_700_000_060_000)
	d := kadm.DescribedTransaction{TxnID: "b", Coordinator: 2, State: "Ongoing", ProducerID: 7, ProducerEpoch: 1,
		TimeoutMillis: 60000, StartTimestamp: 1_700_000_000_000, Topics: kadm.TopicsSet{"t": {1: {}, 0: {}}}}
	if err := WriteTransactionDescription(&b, d, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"id 7, epoch 1", "timeout           1m0s", "(1m0s ago)", "t-0, t-1"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("describe lacks %q:\n%s", want, b.String())
		}
	}

	b.Reset()
	ps := []kadm.DescribedProducer{{Topic: "t", Partition: 0, ProducerID: 7, ProducerEpoch: 1, LastSequence: 4,
		LastTimestamp: 1_700_000_000_000, CoordinatorEpoch: -1, CurrentTxnStartOffset: 12}}
	if err := WriteProducers(&b, ps); err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(strings.Split(b.String(), "\n")[1]); len(f) != 8 || f[7] != "12" || f[6] != "-1" {
		t.Fatalf("producers:\n%s", b.String())
	}
}

func TestAbortTargetAndHanging(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	old := now.Add(-time.Hour).UnixMilli()
	ps := kadm.DescribedProducers{
		1: {Topic: "t", ProducerID: 1, CurrentTxnStartOffset: 5, LastTimestamp: old},
		2: {Topic: "t", ProducerID: 2, CurrentTxnStartOffset: 9, LastTimestamp: now.UnixMilli()},
		3: {Topic: "t", ProducerID: 3, CurrentTxnStartOffset: -1, LastTimestamp: old, CoordinatorEpoch: 4},
	}
	if p, err := AbortTarget(ps, 9); err != nil || p.ProducerID != 2 {
		t.Fatalf("abort target of offset 9: %+v %v", p, err)
	}
	if _, err := AbortTarget(ps, 7); err == nil {
		t.Fatal("no transaction starts at 7, yet a target was found")
	}
	if MarkerCoordinatorEpoch(ps[1]) != 0 || MarkerCoordinatorEpoch(ps[3]) != 4 {
		t.Fatal("marker coordinator epoch")
	}
	c := HangingCandidates(ps.Sorted(), now, 15*time.Minute)
	if len(c) != 1 || c[0].ProducerID != 1 {
		t.Fatalf("candidates %+v, want producer 1 only (2 is recent, 3 has no transaction)", c)
	}
	p := c[0]
	ongoing := &kadm.DescribedTransaction{ProducerID: 1, State: "Ongoing", Topics: kadm.TopicsSet{"t": {0: {}}}}
	for _, tc := range []struct {
		name string
		txn  *kadm.DescribedTransaction
		want bool
	}{
		{"no transactional id", nil, true},
		{"ongoing with the partition", ongoing, false},
		{"another producer id", &kadm.DescribedTransaction{ProducerID: 8, State: "Ongoing", Topics: ongoing.Topics}, true},
		{"completed", &kadm.DescribedTransaction{ProducerID: 1, State: "CompleteCommit"}, true},
		{"ongoing without the partition", &kadm.DescribedTransaction{ProducerID: 1, State: "Ongoing", Topics: kadm.TopicsSet{"u": {0: {}}}}, true},
	} {
		if got := IsHanging(p, tc.txn); got != tc.want {
			t.Errorf("%s: hanging %v, want %v", tc.name, got, tc.want)
		}
	}
}
