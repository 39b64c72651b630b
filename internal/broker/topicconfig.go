package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

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
	if !b.cleanupPolicy(img, topicConfigs, "delete") {
		// As in Kafka, retention deletes segments only under cleanup.policy=delete: a
		// compact-only topic keeps its records (until the log cleaner exists, all of them).
		cfg.RetentionMs, cfg.RetentionBytes = -1, -1
	}
	return cfg
}

// cleanupPolicy reports whether a topic's effective cleanup.policy includes policy.
func (b *Broker) cleanupPolicy(img *metadata.Image, topicConfigs map[string]string, policy string) bool {
	v, _ := b.topicConfigValue(img, topicConfigs, "cleanup.policy")
	return slices.Contains(strings.Split(v, ","), policy)
}

// produceLimits are the topic settings the produce path checks on every request.
type produceLimits struct {
	maxMessageBytes   int64
	minInsyncReplicas int64
	compression       int8 // -1: keep the producer's codec
	timestampBefore   int64
	timestampAfter    int64
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
	}
}

// compactionWarning is the warning sent back (as the response's message, with no error) and
// logged when a topic is created or altered with an effective cleanup.policy that includes
// compact: Samsa accepts the setting, but has no log cleaner yet, so nothing is compacted.
// It returns nil when the policy does not compact.
func (b *Broker) compactionWarning(img *metadata.Image, topic string, topicConfigs map[string]string) *string {
	if !b.cleanupPolicy(img, topicConfigs, "compact") {
		return nil
	}
	policy, _ := b.topicConfigValue(img, topicConfigs, "cleanup.policy")
	b.log.Warn("cleanup.policy=compact is accepted but has no effect yet: Samsa has no log cleaner",
		"topic", topic, "cleanup.policy", policy)
	kept := "keeps every record (retention does not delete under cleanup.policy=compact)"
	if b.cleanupPolicy(img, topicConfigs, "delete") {
		kept = "keeps every record until retention.ms / retention.bytes delete it"
	}
	msg := fmt.Sprintf("warning: cleanup.policy=%s is accepted, but Samsa does not compact logs yet: topic %s %s",
		policy, topic, kept)
	return &msg
}
