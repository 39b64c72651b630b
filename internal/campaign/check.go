package campaign

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Value is the payload every producer writes: its producer id and a sequence number that
// grows by one per record the producer sends, whatever the partition.
type Value struct {
	Producer string
	Seq      int64
}

// String is the wire form: "producer-seq".
func (v Value) String() string { return fmt.Sprintf("%s-%d", v.Producer, v.Seq) }

// ParseValue parses the wire form; ok is false for anything a campaign producer did not write.
func ParseValue(s string) (v Value, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return Value{}, false
	}
	seq, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil || seq < 0 {
		return Value{}, false
	}
	return Value{Producer: s[:i], Seq: seq}, true
}

// Ack is one acknowledged record, as its producer saw it.
type Ack struct {
	Partition int32
	Offset    int64
	Value     string
	At        time.Time // when the producer got the acknowledgement
	Sent      time.Time // when the record was handed to the producer (zero: unknown)
}

// Read is one record a consumer saw during the campaign.
type Read struct {
	Partition int32
	Offset    int64
	Value     string
}

// Record is one record of the final read of a partition.
type Record struct {
	Offset int64
	Value  string
}

// Anomaly is one finding of the checker, for the log.
type Anomaly struct {
	Kind      string // lost, duplicated, misplaced, reordered, divergent
	Partition int32
	Offset    int64
	Detail    string
}

func (a Anomaly) String() string {
	return fmt.Sprintf("%s p%d@%d: %s", a.Kind, a.Partition, a.Offset, a.Detail)
}

// Report is the checker's result. Acknowledged records are expected exactly once in the final
// log, at the offset their acknowledgement gave, and a producer's acknowledged records of one
// partition in sequence order; every read during the campaign is expected to agree with the
// final log.
type Report struct {
	Acked      int // distinct acknowledged values
	Final      int // records in the final read
	Lost       int // acknowledged values absent from the final log
	Duplicated int // values present more than once in the final log (extra copies counted)
	Misplaced  int // acknowledged values present at another offset than acknowledged
	Reordered  int // pairs of one producer's acknowledged records out of sequence order
	Divergent  int // (partition, offset) pairs read during the campaign with another value than the final log's, or beyond its end
	Anomalies  []Anomaly
}

// Failed reports whether the history shows any anomaly.
func (r Report) Failed() bool {
	return r.Lost+r.Duplicated+r.Misplaced+r.Reordered+r.Divergent > 0
}

func (r Report) String() string {
	return fmt.Sprintf("acknowledged %d, final records %d, lost %d, duplicated %d, misplaced %d, reordered %d, divergent reads %d",
		r.Acked, r.Final, r.Lost, r.Duplicated, r.Misplaced, r.Reordered, r.Divergent)
}

type pos struct {
	p int32
	o int64
}

// Check compares the acknowledgements and the campaign's reads with the final read of every
// partition (final[p] in offset order, from offset 0 to the end).
func Check(acks []Ack, reads []Read, final map[int32][]Record) Report {
	var r Report
	add := func(kind string, p int32, o int64, format string, args ...any) {
		r.Anomalies = append(r.Anomalies, Anomaly{Kind: kind, Partition: p, Offset: o, Detail: fmt.Sprintf(format, args...)})
	}

	where := map[string][]pos{} // value -> positions in the final log
	at := map[pos]string{}      // final log
	end := map[int32]int64{}    // final log end per partition
	parts := make([]int32, 0, len(final))
	for p := range final {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		for _, rec := range final[p] {
			r.Final++
			where[rec.Value] = append(where[rec.Value], pos{p, rec.Offset})
			at[pos{p, rec.Offset}] = rec.Value
			end[p] = max(end[p], rec.Offset+1)
		}
	}

	// Duplicates: any value (acknowledged or not) twice in the final log. An idempotent
	// producer's retries must never be appended twice.
	for _, p := range parts {
		for _, rec := range final[p] {
			ps := where[rec.Value]
			if len(ps) > 1 && ps[0] == (pos{p, rec.Offset}) {
				r.Duplicated += len(ps) - 1
				add("duplicated", p, rec.Offset, "%q %d times, at %v", rec.Value, len(ps), ps)
			}
		}
	}

	// Acknowledged values: present, once, where acknowledged.
	seen := map[string]bool{}
	type acked struct {
		off int64
		seq int64
	}
	byProducer := map[string]map[int32][]acked{} // producer -> partition -> final positions of its acked values
	for _, a := range acks {
		if seen[a.Value] {
			continue
		}
		seen[a.Value] = true
		r.Acked++
		ps := where[a.Value]
		if len(ps) == 0 {
			r.Lost++
			add("lost", a.Partition, a.Offset, "%q acknowledged at %s, not in the final log (there: %q)",
				a.Value, a.At.Format("15:04:05.000"), at[pos{a.Partition, a.Offset}])
			continue
		}
		if !slices.Contains(ps, pos{a.Partition, a.Offset}) {
			r.Misplaced++
			add("misplaced", a.Partition, a.Offset, "%q acknowledged here, in the final log at %v (here: %q)",
				a.Value, ps, at[pos{a.Partition, a.Offset}])
		}
		if v, ok := ParseValue(a.Value); ok {
			m := byProducer[v.Producer]
			if m == nil {
				m = map[int32][]acked{}
				byProducer[v.Producer] = m
			}
			m[ps[0].p] = append(m[ps[0].p], acked{ps[0].o, v.Seq})
		}
	}

	// Order: a producer's acknowledged records of one partition appear in sequence order.
	producers := make([]string, 0, len(byProducer))
	for id := range byProducer {
		producers = append(producers, id)
	}
	slices.Sort(producers)
	for _, id := range producers {
		for _, p := range parts {
			recs := byProducer[id][p]
			slices.SortFunc(recs, func(a, b acked) int { return int(a.off - b.off) })
			for i := 1; i < len(recs); i++ {
				if recs[i].seq < recs[i-1].seq {
					r.Reordered++
					add("reordered", p, recs[i].off, "producer %s: seq %d after seq %d (offset %d)",
						id, recs[i].seq, recs[i-1].seq, recs[i-1].off)
				}
			}
		}
	}

	// Reads: every (partition, offset) read holds the same value in the final log.
	divergent := map[pos]bool{}
	for _, rd := range reads {
		k := pos{rd.Partition, rd.Offset}
		if divergent[k] {
			continue
		}
		v, ok := at[k]
		switch {
		case !ok && rd.Offset >= end[rd.Partition]:
			divergent[k] = true
			add("divergent", rd.Partition, rd.Offset, "read %q, beyond the final log end %d", rd.Value, end[rd.Partition])
		case !ok:
			divergent[k] = true
			add("divergent", rd.Partition, rd.Offset, "read %q, no record there in the final log", rd.Value)
		case v != rd.Value:
			divergent[k] = true
			add("divergent", rd.Partition, rd.Offset, "read %q, final log has %q", rd.Value, v)
		}
	}
	r.Divergent = len(divergent)
	return r
}

// Kill is one SIGKILL of a partition's leader.
type Kill struct {
	Partition int32
	Node      int32
	At        time.Time
}

// Failover is the time from a leader's kill to the first acknowledgement for its partition
// of a record sent after it (so by the new leader: an acknowledgement of the old one still in
// flight at the kill does not count). Missing is true when no acknowledgement came before the
// end of the campaign.
type Failover struct {
	Kill
	Took    time.Duration
	Missing bool
}

// FailoverTimes measures each kill from the producers' acknowledgements.
func FailoverTimes(kills []Kill, acks []Ack) []Failover {
	var out []Failover
	for _, k := range kills {
		f := Failover{Kill: k, Missing: true}
		for _, a := range acks {
			if a.Partition != k.Partition || !a.At.After(k.At) || (!a.Sent.IsZero() && !a.Sent.After(k.At)) {
				continue
			}
			if d := a.At.Sub(k.At); f.Missing || d < f.Took {
				f.Took, f.Missing = d, false
			}
		}
		out = append(out, f)
	}
	return out
}

// Summary returns min, median and max of the measured failovers, and how many had none.
func Summary(fs []Failover) (minD, median, maxD time.Duration, missing int) {
	var ds []time.Duration
	for _, f := range fs {
		if f.Missing {
			missing++
			continue
		}
		ds = append(ds, f.Took)
	}
	if len(ds) == 0 {
		return 0, 0, 0, missing
	}
	slices.Sort(ds)
	return ds[0], ds[len(ds)/2], ds[len(ds)-1], missing
}
