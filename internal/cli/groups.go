package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ResetStrategy says where `samsa group reset-offsets` moves a group's offsets.
type ResetStrategy struct {
	Kind    string // earliest, latest, offset, datetime, shift
	Offset  int64  // for offset: the target; for shift: the delta
	AtMilli int64  // for datetime
}

// ParseResetStrategy builds a strategy from the mutually exclusive reset flags; exactly one
// must be set.
func ParseResetStrategy(earliest, latest bool, toOffset, shiftBy *int64, datetime string) (ResetStrategy, error) {
	var chosen []ResetStrategy
	if earliest {
		chosen = append(chosen, ResetStrategy{Kind: "earliest"})
	}
	if latest {
		chosen = append(chosen, ResetStrategy{Kind: "latest"})
	}
	if toOffset != nil {
		chosen = append(chosen, ResetStrategy{Kind: "offset", Offset: *toOffset})
	}
	if shiftBy != nil {
		chosen = append(chosen, ResetStrategy{Kind: "shift", Offset: *shiftBy})
	}
	if datetime != "" {
		ms, err := ParseTimestamp(datetime)
		if err != nil {
			return ResetStrategy{}, fmt.Errorf("--to-datetime: %w", err)
		}
		chosen = append(chosen, ResetStrategy{Kind: "datetime", AtMilli: ms})
	}
	switch len(chosen) {
	case 0:
		return ResetStrategy{}, fmt.Errorf("choose one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	case 1:
		return chosen[0], nil
	}
	return ResetStrategy{}, fmt.Errorf("choose only one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
}

// ParseTimestamp reads RFC 3339 (e.g. 2026-01-02T15:04:05Z), a date-time without zone
// (taken as UTC, like Kafka's tools: 2026-01-02T15:04:05.000) or milliseconds since the epoch.
func ParseTimestamp(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("%q is not RFC 3339, yyyy-MM-ddTHH:mm:ss[.SSS] or epoch milliseconds", s)
}

// ParseTopicPartitions reads --topic values: "name" (every partition) or "name:0,2,5".
func ParseTopicPartitions(args []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, a := range args {
		name, parts, hasParts := strings.Cut(a, ":")
		if name == "" {
			return nil, fmt.Errorf("--topic %q: missing topic name", a)
		}
		if !hasParts {
			out[name] = nil
			continue
		}
		for _, p := range strings.Split(parts, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: bad partition %q", a, p)
			}
			out[name] = append(out[name], int32(n))
		}
	}
	return out, nil
}

// PartitionOffsets are the offsets a reset plan needs for one partition.
type PartitionOffsets struct {
	Committed int64 // -1: no committed offset
	Start     int64
	End       int64
	AtTime    int64 // for datetime: the first offset at or after the time (End if none)
}

// PlanReset computes the new offset of one partition, clamped to [Start, End] as Kafka does.
func PlanReset(s ResetStrategy, o PartitionOffsets) int64 {
	var target int64
	switch s.Kind {
	case "earliest":
		target = o.Start
	case "latest":
		target = o.End
	case "offset":
		target = s.Offset
	case "datetime":
		target = o.AtTime
	case "shift":
		base := o.Committed
		if base < 0 {
			base = o.Start
		}
		target = base + s.Offset
	}
	if target < o.Start {
		target = o.Start
	}
	if target > o.End {
		target = o.End
	}
	return target
}

// WriteOffsetPlan prints a reset plan like kafka-consumer-groups.sh: GROUP TOPIC PARTITION
// NEW-OFFSET, sorted.
func WriteOffsetPlan(w io.Writer, group string, plan kadm.Offsets) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")
	for _, o := range plan.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", group, o.Topic, o.Partition, o.At)
	}
	return tw.Flush()
}

// GroupProtocol says how a group assigns partitions, for the header of `samsa group describe`.
type GroupProtocol struct {
	Type     string // DescribeGroups' protocol type: consumer, connect, ...; "" for an empty classic group
	Protocol string // DescribeGroups' protocol: a classic group's assignor (range, cooperative-sticky, ...)
	KIP848   bool   // a KIP-848 consumer group (ConsumerGroupDescribe knows it)
	Assignor string // a KIP-848 group's server-side assignor; "" until it has one
}

// String gives "consumer/range" for a classic group, "consumer (KIP-848, assignor uniform)"
// for a KIP-848 group, and no trailing slash when the protocol is not known.
func (p GroupProtocol) String() string {
	switch {
	case p.KIP848 && p.Assignor != "":
		return "consumer (KIP-848, assignor " + p.Assignor + ")"
	case p.KIP848:
		return "consumer (KIP-848)"
	case p.Type == "":
		return "-"
	case p.Protocol == "":
		return p.Type
	}
	return p.Type + "/" + p.Protocol
}

// WriteGroupLag prints a group's partitions with committed offset, log end offset and lag per
// partition, like `kafka-consumer-groups.sh --describe`, followed by the total lag.
func WriteGroupLag(w io.Writer, g kadm.DescribedGroupLag, protocol GroupProtocol) error {
	fmt.Fprintf(w, "Group %s (state %s, protocol %s, coordinator %d, %d members)\n\n",
		g.Group, g.State, protocol, g.Coordinator.NodeID, len(g.Members))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	rows := g.Lag.Sorted()
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Topic != rows[j].Topic {
			return rows[i].Topic < rows[j].Topic
		}
		return rows[i].Partition < rows[j].Partition
	})
	for _, l := range rows {
		current := "-"
		if l.Commit.At >= 0 {
			current = strconv.FormatInt(l.Commit.At, 10)
		}
		lag := strconv.FormatInt(l.Lag, 10)
		if l.Err != nil {
			lag = "error: " + Reason(l.Err)
		}
		member, host, client := "-", "-", "-"
		if l.Member != nil {
			member, host, client = l.Member.MemberID, l.Member.ClientHost, l.Member.ClientID
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Topic, l.Partition, current, l.End.Offset, lag, member, host, client)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nTOTAL LAG %d\n", g.Lag.Total())
	return err
}
