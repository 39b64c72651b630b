package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
)

// newGroupCoordinator builds the broker's group coordinator from its settings. It creates
// __consumer_offsets through the controller when first needed.
func newGroupCoordinator(b *Broker) *group.Coordinator {
	return group.NewCoordinator(group.Config{
		NodeID:            b.cfg.NodeID,
		Settings:          groupSettings(b.cfg),
		NumPartitions:     int32(b.cfg.Int64("offsets.topic.num.partitions")),
		ReplicationFactor: offsetsReplicationFactor(b.cfg),
		SegmentBytes:      b.cfg.Int64("offsets.topic.segment.bytes"),
		Logger:            b.log.With("component", "groups"),
		CreateTopic: func(ctx context.Context, n int32, rf int16, configs map[string]string) error {
			return b.createInternalTopic(ctx, group.OffsetsTopic, n, rf, configs)
		},
	})
}

// groupSettings reads the coordinator's broker settings. Settings that internal/config does
// not define yet keep Kafka's defaults.
func groupSettings(cfg *config.Server) group.Settings {
	s := group.DefaultSettings()
	ms := func(name string, def time.Duration) time.Duration {
		return time.Duration(optionalSetting(cfg, name, def.Milliseconds())) * time.Millisecond
	}
	s.InitialRebalanceDelay = ms("group.initial.rebalance.delay.ms", s.InitialRebalanceDelay)
	s.MinSessionTimeout = ms("group.min.session.timeout.ms", s.MinSessionTimeout)
	s.MaxSessionTimeout = ms("group.max.session.timeout.ms", s.MaxSessionTimeout)
	s.OffsetsRetentionCheckInterval = ms("offsets.retention.check.interval.ms", s.OffsetsRetentionCheckInterval)
	s.OffsetsRetention = time.Duration(optionalSetting(cfg, "offsets.retention.minutes", int64(s.OffsetsRetention/time.Minute))) * time.Minute
	s.MaxGroupSize = int(optionalSetting(cfg, "group.max.size", 0))
	s.OffsetMetadataMaxBytes = int(optionalSetting(cfg, "offset.metadata.max.bytes", int64(s.OffsetMetadataMaxBytes)))
	s.Consumer = consumerGroupSettings(cfg)
	return s
}

// optionalSetting returns a numeric broker setting, or def when it is unset or not defined.
func optionalSetting(cfg *config.Server, name string, def int64) int64 {
	v, ok := cfg.Value(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return def
	}
	return n
}

// MetadataApplied is called after the replica manager applied img: the group coordinator
// loads the __consumer_offsets partitions this broker now leads and unloads the others; the
// connection limits follow img, and the host names of ip quota entities are resolved in
// the background (hostQuotas).
func (b *Broker) MetadataApplied(img *metadata.Image) {
	b.groups.ApplyImage(img, b.replicas.Partition)
	b.txnMetadataApplied(img)
	b.applyConnLimits(img)
	b.connLimits.hosts.follow(b.quotas.table())
}

// clientHost is a member's host as Kafka reports it ("/" and the address).
func clientHost(req *request) string {
	host, _, err := net.SplitHostPort(req.conn.remote())
	if err != nil {
		host = req.conn.remote()
	}
	return "/" + host
}

func clientID(req *request) string {
	if req.hdr.ClientID == nil {
		return ""
	}
	return *req.hdr.ClientID
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// offsetsReplicationFactor is offsets.topic.replication.factor; unset, it is Kafka's 3 in a
// cluster (a node with controller.quorum.voters) and Samsa's 1 on a single node, so that a
// cluster's committed offsets survive a broker and a single node needs no setting.
func offsetsReplicationFactor(cfg *config.Server) int16 {
	return internalReplicationFactor(cfg, "offsets.topic.replication.factor")
}

// createInternalTopic creates a coordinator's internal topic through the controller (an
// existing one is not an error) and returns once this broker has applied it.
func (b *Broker) createInternalTopic(ctx context.Context, name string, n int32, rf int16, configs map[string]string) error {
	res := b.ctrl.CreateTopics(ctx, []controller.CreateTopic{{Name: name, NumPartitions: n, ReplicationFactor: rf, Configs: configs}}, false)
	if err := res[0].Err; err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	if res[0].Err == nil {
		b.log.Info("created internal topic", "topic", name, "partitions", n, "replication_factor", rf)
	}
	return b.replicas.WaitApplied(ctx, b.ctrl.Image().Index)
}
