package campaign

import (
	"fmt"
	"slices"
	"strings"
)

// The exactly-once checker. A copier (consume-transform-produce in transactions, its consumer
// group's offsets committed in each transaction) reads the campaign's input topic with
// isolation.level=read_committed and writes each input record's value to the output topic
// as CopyValue(input, txn), txn naming the copier transaction that wrote it. After the
// campaign the copier has caught up with the input; CheckEOS compares the final input log,
// the final output log as a read_committed consumer reads it, the reads a read_committed
// consumer of the output made during the campaign, and what the copier knows of each of its
// transactions.

// CopyValue is the output record of input value in in copier transaction txn: "in|txn".
func CopyValue(in, txn string) string { return in + "|" + txn }

// ParseCopy splits an output value into its input value and its transaction.
func ParseCopy(s string) (in, txn string, ok bool) {
	i := strings.LastIndexByte(s, '|')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// TxnOutcome is what the copier knows of one of its transactions once End returned.
type TxnOutcome int

const (
	// TxnCommitted: EndTransaction committed it (all its records must be visible).
	TxnCommitted TxnOutcome = iota
	// TxnAborted: it was aborted (none of its records may be visible).
	TxnAborted
	// TxnUnknown: End failed, so it may have committed or not (all or none visible).
	TxnUnknown
)

// CopierTxn is one transaction of the copier: its outcome and how many records it produced.
type CopierTxn struct {
	Outcome TxnOutcome
	Records int
}

// EOSReport is the exactly-once checker's result.
type EOSReport struct {
	Input        int // records in the final input log
	Output       int // records a read_committed consumer reads in the final output log
	Transactions int // copier transactions that ended with records
	Committed    int // of those, committed as the copier saw it
	Missing      int // input records with no copy in the output
	Duplicated   int // extra copies of an input record in the output
	Phantom      int // output records whose input is not in the final input log, or that are not copies
	Torn         int // transactions with some but not all of their records visible
	AbortedSeen  int // aborted transactions with records visible
	LostCommit   int // committed transactions with records missing
	Divergent    int // output reads during the campaign not in the final output at their offset
	Anomalies    []Anomaly
}

// Failed reports whether exactly-once was violated.
func (r EOSReport) Failed() bool {
	return r.Missing+r.Duplicated+r.Phantom+r.Torn+r.AbortedSeen+r.LostCommit+r.Divergent > 0
}

func (r EOSReport) String() string {
	return fmt.Sprintf("input %d, output %d (read_committed), copier transactions %d (%d committed); missing %d, duplicated %d, phantom %d, torn transactions %d, aborted transactions visible %d, committed transactions not whole %d, divergent reads %d",
		r.Input, r.Output, r.Transactions, r.Committed, r.Missing, r.Duplicated, r.Phantom, r.Torn, r.AbortedSeen, r.LostCommit, r.Divergent)
}

// CheckEOS checks that every record of the final input log has exactly one copy in the final
// output (read_committed), that no output record comes from anywhere else, that each copier
// transaction is visible whole or not at all (whole when it committed, not at all when it
// aborted), and that every read of the output during the campaign (read_committed) is in the
// final output: a read of an aborted record is not.
func CheckEOS(input, output map[int32][]Record, outputReads []Read, txns map[string]CopierTxn) EOSReport {
	var r EOSReport
	add := func(kind string, p int32, o int64, format string, args ...any) {
		r.Anomalies = append(r.Anomalies, Anomaly{Kind: kind, Partition: p, Offset: o, Detail: fmt.Sprintf(format, args...)})
	}
	inputs := map[string]bool{}
	for _, p := range sortedParts(input) {
		for _, rec := range input[p] {
			r.Input++
			inputs[rec.Value] = true
		}
	}
	copies := map[string][]pos{} // input value -> where its copies are
	visible := map[string]int{}  // copier transaction -> visible records
	at := map[pos]string{}
	for _, p := range sortedParts(output) {
		for _, rec := range output[p] {
			r.Output++
			at[pos{p, rec.Offset}] = rec.Value
			in, txn, ok := ParseCopy(rec.Value)
			switch {
			case !ok:
				r.Phantom++
				add("phantom", p, rec.Offset, "%q is not a copy", rec.Value)
				continue
			case !inputs[in]:
				r.Phantom++
				add("phantom", p, rec.Offset, "copy of %q, which is not in the final input log", in)
			}
			copies[in] = append(copies[in], pos{p, rec.Offset})
			visible[txn]++
		}
	}
	for _, p := range sortedParts(input) {
		for _, rec := range input[p] {
			switch n := len(copies[rec.Value]); {
			case n == 0:
				r.Missing++
				add("missing", p, rec.Offset, "input %q has no copy in the output", rec.Value)
			case n > 1:
				r.Duplicated += n - 1
				add("duplicated", p, rec.Offset, "input %q copied %d times, at %v", rec.Value, n, copies[rec.Value])
			}
		}
	}
	names := make([]string, 0, len(txns))
	for name := range txns {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := txns[name]
		if t.Records == 0 {
			continue
		}
		r.Transactions++
		v := visible[name]
		switch {
		case t.Outcome == TxnCommitted:
			r.Committed++
			if v != t.Records {
				r.LostCommit++
				add("committed-not-whole", -1, -1, "transaction %s committed %d records, %d visible", name, t.Records, v)
			}
		case t.Outcome == TxnAborted && v > 0:
			r.AbortedSeen++
			add("aborted-visible", -1, -1, "transaction %s aborted, %d of its %d records visible", name, v, t.Records)
		case v > 0 && v != t.Records:
			r.Torn++
			add("torn", -1, -1, "transaction %s (outcome unknown): %d of its %d records visible", name, v, t.Records)
		}
	}
	for txn, v := range visible {
		if _, ok := txns[txn]; !ok {
			r.Torn++
			add("torn", -1, -1, "transaction %s unknown to the copier, %d records visible", txn, v)
		}
	}
	divergent := map[pos]bool{}
	for _, rd := range outputReads {
		k := pos{rd.Partition, rd.Offset}
		if v, ok := at[k]; (!ok || v != rd.Value) && !divergent[k] {
			divergent[k] = true
			add("divergent", rd.Partition, rd.Offset, "read %q (read_committed), final output has %q", rd.Value, v)
		}
	}
	r.Divergent = len(divergent)
	return r
}

func sortedParts(m map[int32][]Record) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
