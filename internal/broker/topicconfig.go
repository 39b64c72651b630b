package broker

import (
	"math"
	"strconv"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/storage"
)

// topicConfigValue resolves a topic config the way Kafka does: the topic's own value, else the
// cluster-wide dynamic broker default, else the static broker setting, else Kafka's default.
// It returns the value and its DescribeConfigs source.
func (b *Broker) topicConfigValue(img *metadata.Image, topicConfigs map[string]string, name string) (string, int8) {
	if v, ok := topicConfigs[name]; ok {
		return v, sourceDynamicTopic
	}
	d := config.TopicDef(name)
	if d == nil {
		return "", sourceDefault
	}
	if v, ok := img.BrokerConfig(strconv.Itoa(int(b.cfg.NodeID)))[d.Synonym]; ok {
		return v, sourceDynamicBroker
	}
	if v, ok := img.BrokerConfig("")[d.Synonym]; ok {
		return v, sourceDynamicDefaultBroker
	}
	td := b.topicDefaults[name]
	if td.Source != "" {
		return td.Value, sourceStaticBroker
	}
	return td.Value, sourceDefault
}

// DescribeConfigs sources, as numbered by Kafka.
const (
	sourceDynamicTopic         int8 = 1
	sourceDynamicBroker        int8 = 2
	sourceDynamicDefaultBroker int8 = 3
	sourceStaticBroker         int8 = 4
	sourceDefault              int8 = 5
)

func (b *Broker) topicInt64(img *metadata.Image, configs map[string]string, name string) int64 {
	v, _ := b.topicConfigValue(img, configs, name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// LogConfig derives a partition log's settings from its topic's configs and the broker's.
func (b *Broker) LogConfig(topicConfigs map[string]string) storage.LogConfig {
	img := b.ctrl.Image()
	get := func(name string) int64 { return b.topicInt64(img, topicConfigs, name) }
	ts, _ := b.topicConfigValue(img, topicConfigs, "message.timestamp.type")
	var err error
	cfg := storage.LogConfig{
		SegmentBytes:       get("segment.bytes"),
		SegmentMs:          get("segment.ms"),
		RetentionMs:        get("retention.ms"),
		RetentionBytes:     get("retention.bytes"),
		FlushMessages:      get("flush.messages"),
		FlushMs:            get("flush.ms"),
		IndexIntervalBytes: int32(get("index.interval.bytes")),
		SegmentIndexBytes:  int32(get("segment.index.bytes")),
		LogAppendTime:      ts == "LogAppendTime",
		FileDeleteDelayMs:  get("file.delete.delay.ms"),
	}
	cfg.Cleanup = b.cleanupPolicy(img, topicConfigs)
	if !cfg.Cleanup.Deletes() {
		// As in Kafka, retention deletes segments only under cleanup.policy=delete: a
		// compact-only topic loses records only to the cleaner (storage skips retention
		// then too; an old __consumer_offsets created with retention.ms=-1 is the same).
		cfg.RetentionMs, cfg.RetentionBytes = -1, -1
	}
	ratio, _ := b.topicConfigValue(img, topicConfigs, "min.cleanable.dirty.ratio")
	if cfg.MinCleanableDirtyRatio, err = strconv.ParseFloat(ratio, 64); err != nil {
		cfg.MinCleanableDirtyRatio = 0.5
	}
	cfg.MinCompactionLagMs = get("min.compaction.lag.ms")
	cfg.MaxCompactionLagMs = get("max.compaction.lag.ms")
	if cfg.MaxCompactionLagMs == math.MaxInt64 {
		cfg.MaxCompactionLagMs = 0 // Kafka's default: no bound
	}
	cfg.DeleteRetentionMs = get("delete.retention.ms")
	return cfg
}

// cleanupPolicy is a topic's effective cleanup.policy ("delete", "compact", both in either
// order); an unparsable value (validation refuses them) is delete.
func (b *Broker) cleanupPolicy(img *metadata.Image, topicConfigs map[string]string) storage.CleanupPolicy {
	v, _ := b.topicConfigValue(img, topicConfigs, "cleanup.policy")
	p, err := storage.ParseCleanupPolicy(v)
	if err != nil {
		return storage.CleanupDelete
	}
	return p
}

// produceLimits are the topic settings the produce path checks on every request.
type produceLimits struct {
	// transactionalID is the produce request's (nil without one), for TxnVerifier.
	transactionalID *string
	// addToTxn: the request is Produce v12+, from a client of transaction.version 2, which
	// does not add partitions itself: the leader adds them (KIP-890 part 2).
	addToTxn          bool
	maxMessageBytes   int64
	minInsyncReplicas int64
	compression       int8 // -1: keep the producer's codec
	timestampBefore   int64
	timestampAfter    int64
	compacted         bool // cleanup.policy includes compact: every record needs a key
}

var compressionCodecs = map[string]int8{"producer": -1, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

func (b *Broker) produceLimits(img *metadata.Image, t *metadata.Topic) produceLimits {
	comp, _ := b.topicConfigValue(img, t.Configs, "compression.type")
	codec, ok := compressionCodecs[comp]
	if !ok {
		codec = -1
	}
	return produceLimits{
		maxMessageBytes:   b.topicInt64(img, t.Configs, "max.message.bytes"),
		minInsyncReplicas: b.topicInt64(img, t.Configs, "min.insync.replicas"),
		compression:       codec,
		timestampBefore:   b.topicInt64(img, t.Configs, "message.timestamp.before.max.ms"),
		timestampAfter:    b.topicInt64(img, t.Configs, "message.timestamp.after.max.ms"),
		compacted:         b.cleanupPolicy(img, t.Configs).Compacts(),
	}
}
