package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The tables of `samsa txn` (the equivalent of Kafka's kafka-transactions.sh) and its choice
// of the producer to abort and of the hanging transactions.

// WriteTransactionList prints ListTransactions' answer, one transactional id a row.
func WriteTransactionList(w io.Writer, ls kadm.ListedTransactions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSACTIONAL-ID\tPRODUCER-ID\tSTATE\tCOORDINATOR")
	for _, l := range ls.Sorted() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", l.TxnID, l.ProducerID, l.State, l.Coordinator)
	}
	return tw.Flush()
}

// WriteTransactionDescription prints one DescribeTransactions answer: the coordinator,
// state, producer, timeout, when the transaction started (and how long ago) and its
// partitions.
func WriteTransactionDescription(w io.Writer, d kadm.DescribedTransaction, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "transactional id\t%s\n", d.TxnID)
	fmt.Fprintf(tw, "coordinator\t%d\n", d.Coordinator)
	fmt.Fprintf(tw, "state\t%s\n", d.State)
	fmt.Fprintf(tw, "producer\tid %d, epoch %d\n", d.ProducerID, d.ProducerEpoch)
	fmt.Fprintf(tw, "timeout\t%v\n", time.Duration(d.TimeoutMillis)*time.Millisecond)
	started := "-"
	if d.StartTimestamp >= 0 {
		at := time.UnixMilli(d.StartTimestamp).UTC()
		started = fmt.Sprintf("%s (%v ago)", at.Format(time.RFC3339Nano), now.Sub(at).Truncate(time.Millisecond))
	}
	fmt.Fprintf(tw, "started\t%s\n", started)
	var parts []string
	for _, t := range d.Topics.Sorted() {
		for _, p := range t.Partitions {
			parts = append(parts, fmt.Sprintf("%s-%d", t.Topic, p))
		}
	}
	fmt.Fprintf(tw, "partitions\t%s\n", orNone(strings.Join(parts, ", ")))
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// WriteProducers prints DescribeProducers' answer for partitions, one producer a row;
// TXN-START-OFFSET is the first offset of the producer's open transaction (- if none).
func WriteProducers(w io.Writer, ps []kadm.DescribedProducer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tPRODUCER-ID\tEPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tCOORDINATOR-EPOCH\tTXN-START-OFFSET")
	for _, p := range ps {
		ts := "-"
		if p.LastTimestamp >= 0 {
			ts = time.UnixMilli(p.LastTimestamp).UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", p.Topic, p.Partition, p.ProducerID, p.ProducerEpoch,
			p.LastSequence, ts, p.CoordinatorEpoch, offsetOrDash(p.CurrentTxnStartOffset))
	}
	return tw.Flush()
}

func offsetOrDash(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}

// AbortTarget picks the producer whose open transaction on the partition starts at
// startOffset, as kafka-transactions abort --start-offset does.
func AbortTarget(ps kadm.DescribedProducers, startOffset int64) (kadm.DescribedProducer, error) {
	for _, p := range ps.Sorted() {
		if p.CurrentTxnStartOffset == startOffset {
			return p, nil
		}
	}
	return kadm.DescribedProducer{}, fmt.Errorf("no open transaction starts at offset %d of the partition (see samsa txn producers)", startOffset)
}

// MarkerCoordinatorEpoch is the coordinator epoch an abort marker is written with: the
// producer's last one, or 0 if it never had a marker there (as Kafka's tool does).
func MarkerCoordinatorEpoch(p kadm.DescribedProducer) int32 { return max(p.CoordinatorEpoch, 0) }

// HangingCandidates are the producers with a transaction open on their partition since
// longer than maxAge (their last write is older), which may hang: they hold the partition's
// last stable offset, so read_committed consumers stop there.
func HangingCandidates(ps []kadm.DescribedProducer, now time.Time, maxAge time.Duration) []kadm.DescribedProducer {
	var out []kadm.DescribedProducer
	for _, p := range ps {
		if p.CurrentTxnStartOffset >= 0 && now.Sub(time.UnixMilli(p.LastTimestamp)) > maxAge {
			out = append(out, p)
		}
	}
	return out
}

// IsHanging tells whether a candidate's transaction hangs, as kafka-transactions
// find-hanging decides: no transactional id uses its producer id any more (txn is nil), or
// the id's coordinator has moved on (another producer id, a state other than Ongoing or
// Prepare*), or does not have the partition in the transaction.
func IsHanging(p kadm.DescribedProducer, txn *kadm.DescribedTransaction) bool {
	if txn == nil || txn.Err != nil || txn.ProducerID != p.ProducerID {
		return true
	}
	switch txn.State {
	case "Ongoing", "PrepareCommit", "PrepareAbort":
	default:
		return true
	}
	_, in := txn.Topics[p.Topic][p.Partition]
	return !in
}
