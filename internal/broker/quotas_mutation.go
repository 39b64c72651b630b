package broker

import (
	"context"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/metrics"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/wire"
)

// Controller mutation quotas (KIP-599): controller_mutation_rate bounds the partitions a
// client (its resolved user / client-id entity) creates with CreateTopics and
// CreatePartitions and deletes with DeleteTopics, measured by a token bucket
// (quota.MutationSensors) whose burst is the quota × controller.quota.window.num ×
// controller.quota.window.size.seconds. From CreateTopics v6, CreatePartitions v3 and
// DeleteTopics v5 on the quota is strict: once the bucket is empty a topic is refused with
// THROTTLING_QUOTA_EXCEEDED and the response carries the time until it refills; older versions
// get the permissive quota: accepted, and throttled once they have emptied it. The topics a
// Metadata request auto-creates are charged to the permissive quota (recorded, never refused).
//
// Where: in the active controller, as Kafka 4.x's ControllerApis, so a client has one bucket
// in the cluster whichever broker it asks. A broker that is the active controller charges the
// requests it receives; one that is not forwards the mutation with the client's principal,
// client id and strictness (wire.ForwardedClientTag), and the active controller's controller
// listener charges them and answers the refusals and the throttle, which the broker passes
// on (muting the client's connection). Other requests on the controller listener are exempt,
// as for the other client quotas. A failover starts the buckets afresh, as in Kafka.

// Strict quotas begin at these versions (Kafka's strictSinceVersion).
const (
	createTopicsStrictSince     = 6
	createPartitionsStrictSince = 3
	deleteTopicsStrictSince     = 5
)

// newMutationSensors returns the buckets of controller mutation quotas, measured as the
// broker's controller.quota.window.* settings say.
func newMutationSensors(cfg *config.Server) *quota.MutationSensors {
	return quota.NewMutationSensors(quota.Config{
		Samples: int(cfg.Int64("controller.quota.window.num")),
		Window:  time.Duration(cfg.Int64("controller.quota.window.size.seconds")) * time.Second,
	})
}

// mutationQuota is the controller mutation quota of one request (Kafka's
// ControllerMutationQuota, made per request): strict or permissive by the request's version,
// and the throttle its mutations earned.
type mutationQuota struct {
	b      *Broker
	q      quota.Resolved
	strict bool
	// throttle is the last throttle time computed, at recorded (Kafka's lastThrottleTimeMs,
	// lastRecordedTimeMs).
	throttle time.Duration
	recorded time.Time
	// forwarded: the request came on the controller listener for a client
	// (wire.ForwardedClientTag); its throttle goes in the response, the connection (the
	// forwarding node's) is not muted.
	forwarded bool
	// remote is the client a broker that is not the active controller forwards the
	// mutations for: the controller charges them (q is not set), and its answer's throttle
	// comes back in remote.Throttle.
	remote *wire.ForwardedClient
}

// forwardingController is a Controller that may send changes to another node, the active
// controller (the server's clusterController); Forwards reports whether it does now.
type forwardingController interface{ Forwards() bool }

// newMutationQuota returns the mutation quota of req, strict from version strictSince on:
// charged here (this node is the active controller, or req was forwarded to it for a client),
// left to the active controller (forwarded), or none (the controller listener's own
// requests, and exempt ones).
func (b *Broker) newMutationQuota(req *request, strictSince int16) *mutationQuota {
	m := &mutationQuota{b: b, strict: req.hdr.Version >= strictSince}
	switch fc, forwarded := wire.ForwardedClientOf(req.kreq); {
	case req.conn.controllerPort:
		if forwarded {
			m.strict, m.forwarded = fc.Strict, true
			m.q = b.quotas.resolveFor(fc.Principal, fc.ClientID, quota.ControllerMutationRate)
		}
	case quotaExempt(req):
	case b.forwardsToController():
		m.remote = &wire.ForwardedClient{Principal: req.conn.principal, ClientID: clientID(req), Strict: m.strict}
	default:
		m.q = b.quotas.resolve(req, quota.ControllerMutationRate)
	}
	return m
}

// forwardsToController reports whether the node's changes go to another node now.
func (b *Broker) forwardsToController() bool {
	fc, ok := b.ctrl.(forwardingController)
	return ok && fc.Forwards()
}

// newPermissiveMutationQuota returns the permissive mutation quota of req, whatever its
// version: Kafka's KafkaApis charges the topics a Metadata request auto-creates to
// newPermissiveQuotaFor(request), so they count against the client's bucket (and throttle its
// later CreateTopics) but are never refused.
func (b *Broker) newPermissiveMutationQuota(req *request) *mutationQuota {
	return b.newMutationQuota(req, math.MaxInt16)
}

// context returns ctx for the controller calls of the mutations: carrying the client when
// the active controller is to charge them.
func (m *mutationQuota) context(ctx context.Context) context.Context {
	if m.remote == nil {
		return ctx
	}
	return wire.WithForwardedClient(ctx, m.remote)
}

// record charges a mutation of n partitions. A strict quota whose bucket is empty refuses it
// with THROTTLING_QUOTA_EXCEEDED (nothing charged); a permissive one always accepts it.
func (m *mutationQuota) record(n int64) error {
	if !m.q.OK || n <= 0 {
		return nil
	}
	now := m.b.now()
	if m.strict {
		th, ok := m.b.quotas.mutation.RecordStrict(m.q, float64(n), now)
		if !ok {
			m.throttle, m.recorded = th, now
			return kerr.ThrottlingQuotaExceeded
		}
		return nil
	}
	if th := m.b.quotas.mutation.RecordPermissive(m.q, float64(n), now); th > 0 {
		m.throttle, m.recorded = th, now
	}
	return nil
}

// refund gives back a mutation of n partitions the quota accepted but the controller
// refused: Kafka charges a topic only once it has passed its checks.
func (m *mutationQuota) refund(n int64) {
	if !m.q.OK || n <= 0 {
		return
	}
	m.b.quotas.mutation.Unrecord(m.q, float64(n), m.b.now())
}

// finish gives the request the throttle its mutations earned, less the time since it was
// computed (Kafka's AbstractControllerMutationQuota.throttleTime); applyThrottle sets it in
// the response and mutes the connection, as for the other quotas. A forwarded request's
// throttle goes in resp alone: the forwarding broker mutes its client.
func (m *mutationQuota) finish(req *request, resp kmsg.Response) {
	if m.remote != nil {
		// The metrics count it here, on the broker the client is connected to.
		m.b.throttled(metrics.QuotaControllerMutation, m.remote.Throttle)
		req.bandwidthThrottle = max(req.bandwidthThrottle, m.remote.Throttle)
		return
	}
	if m.throttle <= 0 {
		return
	}
	left := m.throttle - m.b.now().Sub(m.recorded)
	if !m.forwarded {
		m.b.throttled(metrics.QuotaControllerMutation, left)
		req.bandwidthThrottle = max(req.bandwidthThrottle, left)
		return
	}
	if tr, ok := resp.(kmsg.ThrottleResponse); ok && left > 0 {
		if ms, _ := tr.Throttle(); int64(ms) < left.Milliseconds() {
			resp.(kmsg.SetThrottleResponse).SetThrottle(int32(min(left.Milliseconds(), math.MaxInt32)))
		}
	}
}

// chargeCreates charges the topics a CreateTopics request creates, in order; the topics the
// quota refuses are left out of the returned list and given their error in refused. Topics
// that exist already are not charged (they fail with TOPIC_ALREADY_EXISTS first, as in
// Kafka). The charges of the topics the controller then refuses are given back by
// refundCreates.
func (m *mutationQuota) chargeCreates(img *metadata.Image, creates []controller.CreateTopic) (kept []controller.CreateTopic, refused map[string]controller.TopicResult) {
	if !m.q.OK {
		return creates, nil
	}
	for _, ct := range creates {
		if _, exists := img.Topic(ct.Name); !exists {
			if err := m.record(m.createdPartitions(ct)); err != nil {
				if refused == nil {
					refused = map[string]controller.TopicResult{}
				}
				refused[ct.Name] = controller.TopicResult{Name: ct.Name, Err: err}
				continue
			}
		}
		kept = append(kept, ct)
	}
	return kept, refused
}

// refundCreates gives back the charges of the topics of creates that the controller refused.
func (m *mutationQuota) refundCreates(img *metadata.Image, creates []controller.CreateTopic, results map[string]controller.TopicResult) {
	if !m.q.OK {
		return
	}
	for _, ct := range creates {
		if _, exists := img.Topic(ct.Name); !exists && results[ct.Name].Err != nil {
			m.refund(m.createdPartitions(ct))
		}
	}
}

// createdPartitions is how many partitions ct creates (its assignments, else its count,
// num.partitions for -1).
func (m *mutationQuota) createdPartitions(ct controller.CreateTopic) int64 {
	return controller.RequestedPartitions([]controller.CreateTopic{ct}, int32(m.b.cfg.Int64("num.partitions")))
}

// topicPartitions is the partition count of a topic in img (0 when it does not exist:
// nothing is charged for a deletion that fails).
func topicPartitions(img *metadata.Image, name string) int64 {
	if t, ok := img.Topic(name); ok {
		return int64(len(t.Partitions))
	}
	return 0
}
