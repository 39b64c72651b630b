package broker

import (
	"math"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/group/consumer"
)

// KIP-848 consumer groups: the members heartbeat with ConsumerGroupHeartbeat and the
// coordinator assigns the partitions (internal/group/consumer). v1 (Kafka 4.0) has the client
// choose its member id and adds regular-expression subscriptions.
func init() {
	register(kmsg.ConsumerGroupHeartbeat.Int16(), 0, 1, handleConsumerGroupHeartbeat)
	register(kmsg.ConsumerGroupDescribe.Int16(), 0, 1, handleConsumerGroupDescribe)
}

// consumerGroupsEnabled reports whether group.version is finalized at 1 or more: below it,
// Kafka answers both APIs with UNSUPPORTED_VERSION.
func (b *Broker) consumerGroupsEnabled() bool {
	return controller.FinalizedLevel(b.ctrl.Image(), controller.FeatureGroupVersion) >= 1
}

func handleConsumerGroupHeartbeat(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !b.consumerGroupsEnabled() {
		resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, strp(kerr.UnsupportedVersion.Description)
		return resp, nil
	}
	return b.groups.ConsumerGroupHeartbeat(clientID(req), clientHost(req), r), nil
}

func handleConsumerGroupDescribe(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range r.Groups {
		if !b.consumerGroupsEnabled() {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode, g.ErrorMessage = id, kerr.UnsupportedVersion.Code, strp(kerr.UnsupportedVersion.Description)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, id) {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g := b.groups.ConsumerGroupDescribe(id)
		g.AuthorizedOperations = authorizedOperationsOmitted
		if r.Version < 1 {
			for i := range g.Members {
				g.Members[i].MemberType = -1
			}
		}
		if r.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = b.authorizedOperations(req, kmsg.ACLResourceTypeGroup, id)
		}
		if b.undescribableAssignedTopic(req, g) {
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, kerr.TopicAuthorizationFailed.Code
			g.ErrorMessage = strp("The group has described topic(s) that the client is not authorized to describe.")
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// undescribableAssignedTopic reports whether a member's assignment or target assignment has a
// topic the principal may not DESCRIBE: Kafka then answers the whole group
// TOPIC_AUTHORIZATION_FAILED without its members, so no topic name leaks.
func (b *Broker) undescribableAssignedTopic(req *request, g kmsg.ConsumerGroupDescribeResponseGroup) bool {
	for _, m := range g.Members {
		for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
			for _, tp := range a.TopicPartitions {
				if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, tp.Topic) {
					return true
				}
			}
		}
	}
	return false
}

// consumerGroupSettings reads the group.consumer.* settings.
func consumerGroupSettings(cfg *config.Server) consumer.Config {
	c := consumer.DefaultConfig()
	c.HeartbeatInterval = time.Duration(optionalSetting(cfg, "group.consumer.heartbeat.interval.ms", c.HeartbeatInterval.Milliseconds())) * time.Millisecond
	c.SessionTimeout = time.Duration(optionalSetting(cfg, "group.consumer.session.timeout.ms", c.SessionTimeout.Milliseconds())) * time.Millisecond
	if n := optionalSetting(cfg, "group.consumer.max.size", math.MaxInt32); n < math.MaxInt32 {
		c.MaxSize = int(n)
	}
	if v, ok := cfg.Value("group.consumer.migration.policy"); ok && v != "" {
		c.MigrationPolicy = consumer.MigrationPolicy(strings.ToLower(v))
	}
	if v, ok := cfg.Value("group.consumer.assignors"); ok && v != "" {
		var names []string
		for _, a := range strings.Split(v, ",") {
			switch strings.TrimSpace(a) {
			case "uniform", "org.apache.kafka.coordinator.group.assignor.UniformAssignor":
				names = append(names, consumer.AssignorUniform)
			case "range", "org.apache.kafka.coordinator.group.assignor.RangeAssignor":
				names = append(names, consumer.AssignorRange)
			}
		}
		if len(names) > 0 {
			c.Assignors = names
		}
	}
	return c
}
