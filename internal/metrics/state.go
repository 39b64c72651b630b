package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the node's state read at scrape time. The server fills it from the packages that
// own each number (replica manager, controller, broker); a part the node does not have (no
// broker role, no controller) is left at its zero value and HasX false.
type Snapshot struct {
	HasBroker bool
	// Partitions this node hosts and leads, and of those it leads the under-replicated (ISR
	// smaller than the replicas), under min ISR and at min ISR ones, from its metadata image.
	Partitions, Leaders, UnderReplicated, UnderMinISR, AtMinISR int
	// OfflineLogs are hosted partitions whose log cannot be opened here.
	OfflineLogs int
	// ISRShrinks and ISRExpands count the ISR changes this node's leaders had committed.
	ISRShrinks, ISRExpands int64
	// LeaderThrottledBytes and FollowerThrottledBytes are the bytes of throttled replicas
	// counted against the replication throttles (while a rate is set).
	LeaderThrottledBytes, FollowerThrottledBytes int64

	// Topics are the traffic counters of the open partitions, summed per topic.
	Topics []TopicTraffic
	// Logs are the sizes of the open partition logs.
	Logs []LogSize

	// Cleaner is the log cleaner's state.
	Cleaner CleanerState

	HasController bool
	// ActiveController: this node leads the metadata quorum.
	ActiveController bool
	// OfflinePartitions are the partitions with no leader in the cluster, counted by the
	// active controller only (0 elsewhere), as Kafka's controller reports them.
	OfflinePartitions int
	// MetadataApplied is the offset of the last metadata record in the node's image,
	// MetadataCommitted the last the quorum has committed as this node knows it.
	MetadataApplied, MetadataCommitted uint64
}

// TopicTraffic is what clients produced to and fetched from one topic's open partitions here.
type TopicTraffic struct {
	Topic                         string
	BytesIn, MessagesIn, BytesOut int64
}

// LogSize is the size of one partition's log.
type LogSize struct {
	Topic     string
	Partition int32
	Bytes     int64
}

// CleanerState is the log cleaner's part of a Snapshot.
type CleanerState struct {
	// Uncleanable counts the logs the cleaner gave up on until restart.
	Uncleanable int
	// MaxDirtyRatio is the highest dirty ratio (0..1) of the open compacted logs.
	MaxDirtyRatio float64
	// LastCleanSeconds is how long the last cleaning pass took (0: none yet).
	LastCleanSeconds float64
}

// stateCollector turns a Snapshot into metrics at each scrape.
type stateCollector struct {
	snapshot func() Snapshot
}

// RegisterState registers the metrics read from snapshot at each scrape.
func RegisterState(reg prometheus.Registerer, snapshot func() Snapshot) {
	reg.MustRegister(stateCollector{snapshot})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// scalar is one unlabelled metric of a Snapshot.
type scalar struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(s *Snapshot) float64
}

func gauge(name, help string, value func(s *Snapshot) float64) scalar {
	return scalar{desc(name, help), prometheus.GaugeValue, value}
}

func counter(name, help string, value func(s *Snapshot) float64) scalar {
	return scalar{desc(name, help), prometheus.CounterValue, value}
}

// brokerScalars are reported by nodes with the broker role.
var brokerScalars = []scalar{
	gauge("samsa_partitions", "Partitions hosted on this broker (kafka.server:type=ReplicaManager,name=PartitionCount).",
		func(s *Snapshot) float64 { return float64(s.Partitions) }),
	gauge("samsa_leader_partitions", "Partitions this broker leads (kafka.server:type=ReplicaManager,name=LeaderCount).",
		func(s *Snapshot) float64 { return float64(s.Leaders) }),
	gauge("samsa_under_replicated_partitions", "Partitions led here whose ISR is smaller than their replicas (kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions).",
		func(s *Snapshot) float64 { return float64(s.UnderReplicated) }),
	gauge("samsa_under_min_isr_partitions", "Partitions led here whose ISR is below min.insync.replicas (kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount).",
		func(s *Snapshot) float64 { return float64(s.UnderMinISR) }),
	gauge("samsa_at_min_isr_partitions", "Partitions led here whose ISR is at min.insync.replicas (kafka.server:type=ReplicaManager,name=AtMinIsrPartitionCount).",
		func(s *Snapshot) float64 { return float64(s.AtMinISR) }),
	gauge("samsa_offline_log_partitions", "Partitions hosted here whose log cannot be opened (Kafka takes a whole log directory offline instead: kafka.log:type=LogManager,name=OfflineLogDirectoryCount).",
		func(s *Snapshot) float64 { return float64(s.OfflineLogs) }),
	counter("samsa_isr_shrinks_total", "ISR shrinks asked by this node's leaders (AlterPartition) and committed by the controller (kafka.server:type=ReplicaManager,name=IsrShrinksPerSec).",
		func(s *Snapshot) float64 { return float64(s.ISRShrinks) }),
	counter("samsa_isr_expands_total", "ISR expansions asked by this node's leaders (AlterPartition) and committed by the controller (kafka.server:type=ReplicaManager,name=IsrExpandsPerSec).",
		func(s *Snapshot) float64 { return float64(s.ISRExpands) }),
	counter("samsa_leader_replication_throttled_bytes_total", "Bytes sent to followers for throttled replicas, counted against leader.replication.throttled.rate while it is set (kafka.server:type=LeaderReplication,name=byte-rate, a rate).",
		func(s *Snapshot) float64 { return float64(s.LeaderThrottledBytes) }),
	counter("samsa_follower_replication_throttled_bytes_total", "Bytes fetched for throttled replicas, counted against follower.replication.throttled.rate while it is set (kafka.server:type=FollowerReplication,name=byte-rate, a rate).",
		func(s *Snapshot) float64 { return float64(s.FollowerThrottledBytes) }),
	gauge("samsa_log_cleaner_uncleanable_partitions", "Logs the cleaner gave up on until restart (kafka.log:type=LogCleanerManager,name=uncleanable-partitions-count).",
		func(s *Snapshot) float64 { return float64(s.Cleaner.Uncleanable) }),
	gauge("samsa_log_cleaner_max_dirty_ratio", "Highest dirty ratio (0 to 1) of the open compacted logs (kafka.log:type=LogCleanerManager,name=max-dirty-percent, a percentage).",
		func(s *Snapshot) float64 { return s.Cleaner.MaxDirtyRatio }),
	gauge("samsa_log_cleaner_last_clean_seconds", "Duration of the last cleaning pass that did work (kafka.log:type=LogCleaner,name=max-clean-time-secs).",
		func(s *Snapshot) float64 { return s.Cleaner.LastCleanSeconds }),
}

// controllerScalars are reported by nodes with the controller role.
var controllerScalars = []scalar{
	gauge("samsa_active_controller", "1 on the node leading the metadata quorum, else 0 (kafka.controller:type=KafkaController,name=ActiveControllerCount).",
		func(s *Snapshot) float64 { return b2f(s.ActiveController) }),
	gauge("samsa_offline_partitions", "Partitions with no leader, reported by the active controller, 0 elsewhere (kafka.controller:type=KafkaController,name=OfflinePartitionsCount).",
		func(s *Snapshot) float64 { return float64(s.OfflinePartitions) }),
}

// nodeScalars are reported by every node.
var nodeScalars = []scalar{
	gauge("samsa_metadata_last_applied_offset", "Offset of the last metadata log entry applied here (kafka.server:type=broker-metadata-metrics, last-applied-record-offset).",
		func(s *Snapshot) float64 { return float64(s.MetadataApplied) }),
	gauge("samsa_metadata_last_committed_offset", "Offset of the last metadata log entry the quorum committed, as this node knows it (kafka.controller:type=KafkaController,name=LastCommittedRecordOffset).",
		func(s *Snapshot) float64 { return float64(s.MetadataCommitted) }),
	gauge("samsa_metadata_apply_lag", "Metadata log entries committed and not yet applied here (Kafka measures the lag in ms: last-applied-record-lag-ms).",
		func(s *Snapshot) float64 {
			return float64(s.MetadataCommitted - min(s.MetadataApplied, s.MetadataCommitted))
		}),
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	bytesInDesc  = desc("samsa_topic_bytes_in_total", "Bytes produced by clients, by topic, to the partitions open here since start (kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=*).", "topic")
	bytesOutDesc = desc("samsa_topic_bytes_out_total", "Bytes fetched by consumers, by topic, from the partitions open here since start (kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec,topic=*).", "topic")
	msgsInDesc   = desc("samsa_topic_messages_in_total", "Records produced by clients, by topic, to the partitions open here since start (kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=*).", "topic")
	logSizeDesc  = desc("samsa_log_size_bytes", "Size of an open partition log (kafka.log:type=Log,name=Size,topic=*,partition=*).", "topic", "partition")
)

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, l := range [][]scalar{brokerScalars, controllerScalars, nodeScalars} {
		for _, sc := range l {
			ch <- sc.desc
		}
	}
	for _, d := range []*prometheus.Desc{bytesInDesc, bytesOutDesc, msgsInDesc, logSizeDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	emit := func(l []scalar) {
		for _, sc := range l {
			ch <- prometheus.MustNewConstMetric(sc.desc, sc.typ, sc.value(&s))
		}
	}
	emit(nodeScalars)
	if s.HasController {
		emit(controllerScalars)
	}
	if !s.HasBroker {
		return
	}
	emit(brokerScalars)
	for _, t := range s.Topics {
		ch <- prometheus.MustNewConstMetric(bytesInDesc, prometheus.CounterValue, float64(t.BytesIn), t.Topic)
		ch <- prometheus.MustNewConstMetric(bytesOutDesc, prometheus.CounterValue, float64(t.BytesOut), t.Topic)
		ch <- prometheus.MustNewConstMetric(msgsInDesc, prometheus.CounterValue, float64(t.MessagesIn), t.Topic)
	}
	for _, l := range s.Logs {
		ch <- prometheus.MustNewConstMetric(logSizeDesc, prometheus.GaugeValue, float64(l.Bytes), l.Topic, strconv.Itoa(int(l.Partition)))
	}
}
