package cli

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Quorum is the metadata quorum as DescribeQuorum answers it (the __cluster_metadata
// partition), with the voters' controller endpoints.
type Quorum struct {
	LeaderID      int32
	LeaderEpoch   int32
	HighWatermark int64
	Voters        []kmsg.DescribeQuorumResponseTopicPartitionReplicaState
	Observers     []kmsg.DescribeQuorumResponseTopicPartitionReplicaState
	Endpoints     map[int32]string // voter id -> host:port of its controller listener (v2+)
}

// QuorumFrom extracts the metadata partition's state from a DescribeQuorum response.
func QuorumFrom(resp *kmsg.DescribeQuorumResponse) (Quorum, error) {
	if err := errorOf(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return Quorum{}, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := errorOf(p.ErrorCode, p.ErrorMessage); err != nil {
				return Quorum{}, err
			}
			q := Quorum{LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark,
				Voters: p.CurrentVoters, Observers: p.Observers, Endpoints: map[int32]string{}}
			for _, n := range resp.Nodes {
				for _, l := range n.Listeners {
					q.Endpoints[n.NodeID] = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
				}
			}
			return q, nil
		}
	}
	return Quorum{}, fmt.Errorf("the answer has no metadata partition")
}

// errorOf turns a Kafka error code and message into an error (nil for 0).
func errorOf(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	err := kerr.ErrorForCode(code)
	if msg != nil && *msg != "" {
		return fmt.Errorf("%w: %s", err, *msg)
	}
	return err
}

// WriteClusterDescription writes the cluster id, the brokers (id, host:port, rack), the
// active controller and the metadata quorum: leader, epoch, high watermark and, per voter
// and observer, its log end offset, lag behind the high watermark and last caught-up time
// (relative to now), like kafka-metadata-quorum describe --status and --replication.
func WriteClusterDescription(w io.Writer, meta kadm.Metadata, q Quorum, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Cluster ID:\t%s\n", meta.Cluster)
	controller := "none"
	if q.LeaderID >= 0 {
		controller = strconv.Itoa(int(q.LeaderID))
	}
	fmt.Fprintf(tw, "Active controller:\t%s\n", controller)
	fmt.Fprintf(tw, "Brokers:\t%d\n", len(meta.Brokers))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write cluster description: %w", err)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tADDRESS\tRACK")
	for _, b := range meta.Brokers {
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write cluster description: %w", err)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Metadata quorum:")
	fmt.Fprintf(tw, "  Leader:\t%s\n", controller)
	fmt.Fprintf(tw, "  Epoch:\t%d\n", q.LeaderEpoch)
	fmt.Fprintf(tw, "  High watermark:\t%d\n", q.HighWatermark)
	fmt.Fprintf(tw, "  Voters:\t%d\n", len(q.Voters))
	fmt.Fprintf(tw, "  Observers:\t%d\n", len(q.Observers))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write cluster description: %w", err)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tSTATUS\tLOG-END-OFFSET\tLAG\tLAST-CAUGHT-UP\tCONTROLLER-ADDRESS")
	row := func(r kmsg.DescribeQuorumResponseTopicPartitionReplicaState, status string) {
		addr := q.Endpoints[r.ReplicaID]
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%d\t%s\t%s\n", r.ReplicaID, status, r.LogEndOffset,
			max(q.HighWatermark-r.LogEndOffset, 0), ago(r.LastCaughtUpTimestamp, now), addr)
	}
	for _, v := range q.Voters {
		status := "Follower"
		if v.ReplicaID == q.LeaderID {
			status = "Leader"
		}
		row(v, status)
	}
	for _, o := range q.Observers {
		row(o, "Observer")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write cluster description: %w", err)
	}
	return nil
}

// ago renders a millisecond timestamp as the time before now ("120ms ago"), or "-" if unknown.
func ago(ms int64, now time.Time) string {
	if ms <= 0 {
		return "-"
	}
	d := max(now.Sub(time.UnixMilli(ms)), 0)
	if d >= time.Second {
		d = d.Round(100 * time.Millisecond)
	} else {
		d = d.Round(time.Millisecond)
	}
	return d.String() + " ago"
}
