package broker

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metrics"
	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/storage"
)

// clientQuotas enforces the client quotas (Kafka's ClientQuotaManager for produce and fetch
// bytes, ClientRequestQuotaManager for request time): each request is recorded in the sensor
// of the quota in force for its (user, client id), and a client over a quota is given a
// throttle time (throttle.go mutes its connection for it, KIP-219).
type clientQuotas struct {
	// source holds the quota.Source of the configured quotas (the metadata image, once the
	// quota store is merged; an empty table until then or in tests that set none); atomic so
	// that tests may set it while connections are served.
	source   atomic.Value
	resolver quota.Resolver
	window   quota.Config
	produce  *quota.Sensors
	fetch    *quota.Sensors
	request  *quota.Sensors
	// mutation holds the controller_mutation_rate token buckets (quotas_mutation.go).
	mutation *quota.MutationSensors
}

// newClientQuotas returns the client quotas of the broker, read from source.
func newClientQuotas(cfg *config.Server, source quota.Source) *clientQuotas {
	qc := quota.Config{
		Samples: int(cfg.Int64("quota.window.num")),
		Window:  time.Duration(cfg.Int64("quota.window.size.seconds")) * time.Second,
	}
	q := &clientQuotas{
		window:  qc,
		produce: quota.NewSensors(qc, false),
		fetch:   quota.NewSensors(qc, false),
		request: quota.NewSensors(qc, true),
		// controller.quota.window.* measure mutations, as in Kafka.
		mutation: newMutationSensors(cfg),
	}
	q.setSource(source)
	return q
}

type sourceBox struct{ quota.Source }

// setSource sets where the configured quotas are read from.
func (q *clientQuotas) setSource(s quota.Source) { q.source.Store(sourceBox{s}) }

// table returns the quotas configured now.
func (q *clientQuotas) table() *quota.Table { return q.source.Load().(sourceBox).ClientQuotas() }

// resolve returns the quota of kind key in force for the request's principal and client id.
func (q *clientQuotas) resolve(req *request, key string) quota.Resolved {
	return q.resolveFor(req.conn.principal, clientID(req), key)
}

// resolveFor returns the quota of kind key in force for a principal and client id.
func (q *clientQuotas) resolveFor(principal, clientID, key string) quota.Resolved {
	return q.resolver.Resolve(q.table(), key, quota.UserName(principal), clientID)
}

// quotaExemptAPIs are the requests Kafka never counts against request quotas: the cluster
// actions of brokers and controllers (ApiKeys with clusterAction) and the SASL exchange.
var quotaExemptAPIs = map[int16]bool{
	kmsg.LeaderAndISR.Int16():           true,
	kmsg.StopReplica.Int16():            true,
	kmsg.UpdateMetadata.Int16():         true,
	kmsg.ControlledShutdown.Int16():     true,
	kmsg.WriteTxnMarkers.Int16():        true,
	kmsg.Vote.Int16():                   true,
	kmsg.BeginQuorumEpoch.Int16():       true,
	kmsg.EndQuorumEpoch.Int16():         true,
	kmsg.DescribeQuorum.Int16():         true,
	kmsg.AlterPartition.Int16():         true,
	kmsg.Envelope.Int16():               true,
	kmsg.FetchSnapshot.Int16():          true,
	kmsg.BrokerRegistration.Int16():     true,
	kmsg.BrokerHeartbeat.Int16():        true,
	kmsg.AllocateProducerIDs.Int16():    true,
	kmsg.ControllerRegistration.Int16(): true,
	kmsg.AssignReplicasToDirs.Int16():   true,
	kmsg.SASLHandshake.Int16():          true,
	kmsg.SASLAuthenticate.Int16():       true,
}

// quotaExempt reports whether a request escapes every client quota: Kafka's exempt APIs, a
// replica's fetch (marked by the fetch handler) and anything on the controller listener.
func quotaExempt(req *request) bool {
	return req.conn.controllerPort || req.quotaExempt || quotaExemptAPIs[req.hdr.Key]
}

// recordProduce records a produce request's size against producer_byte_rate and keeps the
// throttle time on the request (Kafka records request.sizeInBytes, the whole request).
func (b *Broker) recordProduce(req *request) {
	if quotaExempt(req) {
		return
	}
	q := b.quotas.resolve(req, quota.ProducerByteRate)
	req.bandwidthThrottle = b.quotas.produce.RecordAndThrottle(q, float64(req.size), b.now())
	b.throttled(metrics.QuotaProduce, req.bandwidthThrottle)
}

// fetchQuotaMaxBytes lowers a consumer's fetch max bytes to what its consumer_byte_rate
// allows in one quota span (Kafka's getMaxValueInQuotaWindow).
func (b *Broker) fetchQuotaMaxBytes(req *request, maxBytes int32) int32 {
	if quotaExempt(req) {
		return maxBytes
	}
	limit, ok := b.quotas.fetch.MaxValueInWindow(b.quotas.resolve(req, quota.ConsumerByteRate))
	if !ok || limit >= float64(maxBytes) && maxBytes > 0 {
		return maxBytes
	}
	return int32(max(limit, 1))
}

// recordFetch records a consumer's fetched bytes against consumer_byte_rate and keeps the
// throttle time on the request. The response is still sent with its records: the bytes are
// recorded, so the rate measured is the rate delivered (Kafka sends an empty response when it
// throttles a fetch and unrecords its bytes; the client fetches them again after the
// throttle, which delivers at the same rate).
func (b *Broker) recordFetch(req *request, bytes int) {
	if quotaExempt(req) {
		return
	}
	q := b.quotas.resolve(req, quota.ConsumerByteRate)
	req.bandwidthThrottle = b.quotas.fetch.RecordAndThrottle(q, float64(bytes), b.now())
	b.throttled(metrics.QuotaFetch, req.bandwidthThrottle)
}

// requestThrottle records the time a request took in its handler, less the time it waited
// for something to happen (a fetch's long poll, acks=all replication, a group join), as a
// percentage of one thread over the quota window (Kafka's request_percentage), and returns
// the request's throttle time: the longer of it and the request's bandwidth throttle.
func (b *Broker) requestThrottle(req *request, handled time.Duration) time.Duration {
	if quotaExempt(req) {
		return 0
	}
	work := max(handled-req.waited, 0)
	q := b.quotas.resolve(req, quota.RequestPercentage)
	// A percentage of one thread, per second: nanoseconds × 100 / 1e9.
	rt := b.quotas.request.RecordAndThrottle(q, float64(work.Nanoseconds())*100/1e9, b.now())
	b.throttled(metrics.QuotaRequest, rt)
	return max(rt, req.bandwidthThrottle)
}

// fetchedBytes is the size of the records a consumer's fetch response carries: in memory or
// in the segment regions sent with sendfile. Each partition's share is added to its traffic
// (BytesOut).
func fetchedBytes(parts []fetchPart, regions map[*kmsgPartition]*storage.Region) int {
	n := 0
	for i := range parts {
		m := partBytes(&parts[i], regions)
		if m > 0 {
			parts[i].p.CountFetched(int64(m))
		}
		n += m
	}
	return n
}

// partBytes is the size of the records one partition of a fetch response carries.
func partBytes(pt *fetchPart, regions map[*kmsgPartition]*storage.Region) int {
	if reg := regions[pt.resp]; reg != nil {
		return int(reg.Len)
	}
	return len(pt.resp.RecordBatches)
}
