package cli

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/wire"
)

// ReplicationFactor is the largest replica count over a topic's partitions (they are normally
// all equal), or 0 for a topic without partitions.
func ReplicationFactor(td kadm.TopicDetail) int {
	rf := 0
	for _, p := range td.Partitions {
		rf = max(rf, len(p.Replicas))
	}
	return rf
}

// WriteTopicList writes one row per topic, sorted by name: name, partition count and
// replication factor. Topics that failed to load are listed with their error.
func WriteTopicList(w io.Writer, topics kadm.TopicDetails) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICATION-FACTOR")
	for _, name := range topics.Names() {
		td := topics[name]
		if td.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t(%s)\n", name, Reason(td.Err))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", name, len(td.Partitions), ReplicationFactor(td))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write topic list: %w", err)
	}
	return nil
}

// TopicIDString renders a topic ID the way Kafka's tools do (URL-safe base64 without
// padding), or "" for the all-zero ID of a broker without topic IDs.
func TopicIDString(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// TopicOverrides returns the configs set on the topic itself (source DYNAMIC_TOPIC_CONFIG),
// sorted by key: the values that differ from the broker's defaults.
func TopicOverrides(configs []kadm.Config) []kadm.Config {
	var out []kadm.Config
	for _, c := range configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// configString renders one config as k=v, hiding sensitive values.
func configString(c kadm.Config) string {
	if c.Sensitive || c.Value == nil {
		return c.Key + "=(sensitive)"
	}
	return c.Key + "=" + *c.Value
}

// PartitionFilter selects the partitions a description shows (kafka-topics' --describe
// filters); nil shows them all.
type PartitionFilter func(kadm.PartitionDetail) bool

// UnderReplicated selects partitions whose ISR is smaller than their replica set
// (kafka-topics --under-replicated-partitions).
func UnderReplicated(p kadm.PartitionDetail) bool { return len(p.ISR) < len(p.Replicas) }

// Unavailable returns the filter of partitions without a leader, or led by a broker that is
// not among the live brokers (kafka-topics --unavailable-partitions).
func Unavailable(live []int32) PartitionFilter {
	return func(p kadm.PartitionDetail) bool { return p.Leader < 0 || !slices.Contains(live, p.Leader) }
}

// AnyOf selects the partitions any of the filters selects; with none it selects all (nil).
func AnyOf(filters ...PartitionFilter) PartitionFilter {
	if len(filters) == 0 {
		return nil
	}
	return func(p kadm.PartitionDetail) bool {
		return slices.ContainsFunc(filters, func(f PartitionFilter) bool { return f(p) })
	}
}

// Matching returns the partitions of td that keep selects, sorted (all of them if keep is nil).
func Matching(td kadm.TopicDetail, keep PartitionFilter) []kadm.PartitionDetail {
	parts := td.Partitions.Sorted()
	if keep != nil {
		parts = slices.DeleteFunc(parts, func(p kadm.PartitionDetail) bool { return !keep(p) })
	}
	return parts
}

// WriteTopicDescription writes a topic's summary, its non-default configs (overrides, as
// returned by TopicOverrides) and a table of its partitions with leader, replicas and ISR:
// those keep selects (all if nil). cleaner holds the log cleaner's state of the partitions'
// leaders (CleanerStates); when any shown partition has one, the table gets the DIRTY
// (dirty ratio) and CLEANED TO (first dirty offset: the offsets below were compacted) columns.
func WriteTopicDescription(w io.Writer, td kadm.TopicDetail, overrides []kadm.Config, keep PartitionFilter, cleaner map[int32]wire.CleanerState) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Topic:\t%s\n", td.Topic)
	if id := TopicIDString(td.ID); id != "" {
		fmt.Fprintf(tw, "ID:\t%s\n", id)
	}
	if td.IsInternal {
		fmt.Fprintf(tw, "Internal:\ttrue\n")
	}
	fmt.Fprintf(tw, "Partitions:\t%d\n", len(td.Partitions))
	fmt.Fprintf(tw, "Replication factor:\t%d\n", ReplicationFactor(td))
	if len(overrides) == 0 {
		fmt.Fprintf(tw, "Configs:\t(defaults)\n")
	}
	for i, c := range overrides {
		label := ""
		if i == 0 {
			label = "Configs:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, configString(c))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write topic description: %w", err)
	}

	parts := Matching(td, keep)
	var withOffline, withErr, withCleaner, withUncleanable bool
	for _, p := range parts {
		withOffline = withOffline || len(p.OfflineReplicas) > 0
		withErr = withErr || p.Err != nil
		st, ok := cleaner[p.Partition]
		withCleaner = withCleaner || ok
		withUncleanable = withUncleanable || st.Uncleanable != ""
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "  PARTITION\tLEADER\tREPLICAS\tISR"
	if withOffline {
		header += "\tOFFLINE"
	}
	if withCleaner {
		header += "\tDIRTY\tCLEANED TO"
	}
	if withUncleanable {
		header += "\tUNCLEANABLE"
	}
	if withErr {
		header += "\tERROR"
	}
	fmt.Fprintln(tw, header)
	for _, p := range parts {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		row := fmt.Sprintf("  %d\t%s\t%s\t%s", p.Partition, leader, joinIDs(p.Replicas), joinIDs(p.ISR))
		if withOffline {
			row += "\t" + joinIDs(p.OfflineReplicas)
		}
		if withCleaner {
			if st, ok := cleaner[p.Partition]; ok {
				row += fmt.Sprintf("\t%.2f\t%d", st.DirtyRatio, st.FirstDirtyOffset)
			} else {
				row += "\t-\t-"
			}
		}
		if withUncleanable {
			row += "\t" + cmp.Or(cleaner[p.Partition].Uncleanable, "-")
		}
		if withErr {
			row += "\t" + Reason(p.Err)
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write topic description: %w", err)
	}
	return nil
}

// joinIDs renders broker ids as "1,2,3", or "-" when empty.
func joinIDs(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	return b.String()
}

// CleanerStates picks, from DescribeLogDirs responses by broker id, the log cleaner state
// (Samsa's wire.CleanerStateTag) of each partition's leader replica of td. Partitions whose
// leader sent none (not compacted, a broker that is not Samsa) are left out.
func CleanerStates(td kadm.TopicDetail, byBroker map[int32]*kmsg.DescribeLogDirsResponse) map[int32]wire.CleanerState {
	out := map[int32]wire.CleanerState{}
	for _, p := range td.Partitions {
		resp := byBroker[p.Leader]
		if resp == nil {
			continue
		}
		for _, d := range resp.Dirs {
			for _, t := range d.Topics {
				if t.Topic != td.Topic {
					continue
				}
				for _, dp := range t.Partitions {
					if dp.Partition != p.Partition {
						continue
					}
					dp.UnknownTags.Each(func(tag uint32, v []byte) {
						if tag != wire.CleanerStateTag {
							return
						}
						if st, err := wire.DecodeCleanerState(v); err == nil {
							out[p.Partition] = st
						}
					})
				}
			}
		}
	}
	return out
}
