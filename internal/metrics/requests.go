package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuotaType is the kind of client quota that throttled a request, as Kafka's throttle-time
// sensors name them.
type QuotaType int

// The quota types.
const (
	QuotaProduce QuotaType = iota
	QuotaFetch
	QuotaRequest
	QuotaControllerMutation
	numQuotaTypes
)

var quotaTypeNames = [numQuotaTypes]string{"Produce", "Fetch", "Request", "ControllerMutation"}

// latencyBuckets are the request latency histogram's bounds, in seconds (0.5 ms to 30 s).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Broker holds the metrics a broker updates as it serves requests and connections. Its
// children are made when it is built (per API key, per quota type) or when a listener starts
// (Listener), so the request path adds to them with no label lookup and no allocation; error
// codes other than NONE are looked up per API under a mutex, as they are rare.
type Broker struct {
	apis [kmsg.MaxKey + 1]*apiMetrics
	// fetchFollower holds the request count and latency of replicas' fetches; apis[Fetch]
	// those of consumers' (Kafka's request=FetchFollower and request=FetchConsumer; its errors
	// are request=Fetch for both).
	fetchFollower *apiMetrics
	errors        *prometheus.CounterVec
	conns         connVecs
	produce       partitionRequests
	fetch         partitionRequests

	throttleTime [numQuotaTypes]prometheus.Counter
	throttled    [numQuotaTypes]prometheus.Counter
}

type apiMetrics struct {
	name     string
	requests prometheus.Counter
	time     prometheus.Observer
	none     prometheus.Counter // error code NONE
	mu       sync.Mutex
	errs     map[int16]prometheus.Counter
}

// partitionRequests counts the partitions of Produce or Fetch requests and those that failed
// (Kafka's BrokerTopicMetrics TotalProduceRequestsPerSec, FailedProduceRequestsPerSec, and
// the fetch ones, which it also marks once per partition).
type partitionRequests struct{ total, failed prometheus.Counter }

type connVecs struct {
	created, closed *prometheus.CounterVec
	open            *prometheus.GaugeVec
}

// counterVec makes and registers a counter family.
func counterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg.MustRegister(v)
	return v
}

// NewBroker makes the broker's metrics and registers them.
func NewBroker(reg prometheus.Registerer) *Broker {
	requests := counterVec(reg, "samsa_requests_total",
		"Requests handled, by API, Fetch split into FetchConsumer and FetchFollower as in Kafka (kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*).", "request")
	times := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "samsa_request_total_time_seconds",
		Help:    "Time from a request read whole to its response handed to the connection, by API, Fetch split into FetchConsumer and FetchFollower (kafka.network:type=RequestMetrics,name=TotalTimeMs,request=*).",
		Buckets: latencyBuckets,
	}, []string{"request"})
	reg.MustRegister(times)
	m := &Broker{errors: counterVec(reg, "samsa_request_errors_total",
		"Error codes in responses, by API and error, NONE included; every error code field of a response counts, so a produce answer counts one per partition (kafka.network:type=RequestMetrics,name=ErrorsPerSec,request=*,error=*).",
		"request", "error")}
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		name := kmsg.NameForKey(key)
		if name == "" || kmsg.RequestForKey(key) == nil {
			continue
		}
		label := name
		if key == kmsg.Fetch.Int16() {
			label = "FetchConsumer"
			m.fetchFollower = &apiMetrics{requests: requests.WithLabelValues("FetchFollower"), time: times.WithLabelValues("FetchFollower")}
		}
		m.apis[key] = &apiMetrics{
			name:     name,
			requests: requests.WithLabelValues(label),
			time:     times.WithLabelValues(label),
			none:     m.errors.WithLabelValues(name, "NONE"),
			errs:     map[int16]prometheus.Counter{},
		}
	}
	counter := func(name, help string) prometheus.Counter { return counterVec(reg, name, help).WithLabelValues() }
	m.produce = partitionRequests{
		total:  counter("samsa_produce_partition_requests_total", "Partitions of Produce requests answered (kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec)."),
		failed: counter("samsa_produce_partition_requests_failed_total", "Partitions of Produce requests answered with an error (kafka.server:type=BrokerTopicMetrics,name=FailedProduceRequestsPerSec)."),
	}
	m.fetch = partitionRequests{
		total:  counter("samsa_fetch_partition_requests_total", "Partitions of Fetch requests answered, consumers' and followers' (kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec)."),
		failed: counter("samsa_fetch_partition_requests_failed_total", "Partitions of Fetch requests answered with an error (kafka.server:type=BrokerTopicMetrics,name=FailedFetchRequestsPerSec)."),
	}
	m.conns = connVecs{
		created: counterVec(reg, "samsa_connections_created_total",
			"Connections accepted, by listener (kafka.server:type=socket-server-metrics,listener=*,networkProcessor=*, connection-creation-total).", "listener"),
		closed: counterVec(reg, "samsa_connections_closed_total",
			"Connections closed, by listener (kafka.server:type=socket-server-metrics,listener=*,networkProcessor=*, connection-close-total).", "listener"),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "samsa_connections",
			Help: "Open connections, by listener (kafka.server:type=socket-server-metrics,listener=*,networkProcessor=*, connection-count).",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.conns.open)
	throttleTime := counterVec(reg, "samsa_quota_throttle_time_ms_total",
		"Throttle time given to clients over a quota, by quota type (kafka.server:type={Produce,Fetch,Request,ControllerMutation},user=*,client-id=*, throttle-time).", "quota")
	throttled := counterVec(reg, "samsa_quota_throttled_requests_total",
		"Requests throttled for a quota, by quota type (the count of kafka.server:type={Produce,Fetch,Request,ControllerMutation} throttle-time samples above zero).", "quota")
	for q := range numQuotaTypes {
		m.throttleTime[q] = throttleTime.WithLabelValues(quotaTypeNames[q])
		m.throttled[q] = throttled.WithLabelValues(quotaTypeNames[q])
	}
	return m
}

// RequestDone records a handled request: its API, the time since it was read and the error
// codes of its response (nil: none sent, an acks=0 produce or a closed connection). follower
// marks a replica's Fetch.
func (m *Broker) RequestDone(key int16, follower bool, resp kmsg.Response, elapsed time.Duration) {
	if key < 0 || int(key) >= len(m.apis) || m.apis[key] == nil {
		return
	}
	a := m.apis[key]
	timed := a
	if follower && key == kmsg.Fetch.Int16() {
		timed = m.fetchFollower
	}
	timed.requests.Inc()
	timed.time.Observe(elapsed.Seconds())
	if resp != nil {
		m.countErrors(a, resp)
	}
}

// Throttled records a throttle given to a request by a quota of type q.
func (m *Broker) Throttled(q QuotaType, d time.Duration) {
	if d <= 0 || q < 0 || q >= numQuotaTypes {
		return
	}
	m.throttleTime[q].Add(float64(d.Milliseconds()))
	m.throttled[q].Inc()
}

// ListenerConns counts the connections of one listener.
type ListenerConns struct {
	created, closed prometheus.Counter
	open            prometheus.Gauge
}

// Listener returns the connection metrics of a listener (once per listener, when it starts).
func (m *Broker) Listener(name string) *ListenerConns {
	return &ListenerConns{
		created: m.conns.created.WithLabelValues(name),
		closed:  m.conns.closed.WithLabelValues(name),
		open:    m.conns.open.WithLabelValues(name),
	}
}

// Opened counts a connection accepted.
func (l *ListenerConns) Opened() { l.created.Inc(); l.open.Inc() }

// Closed counts a connection closed.
func (l *ListenerConns) Closed() { l.closed.Inc(); l.open.Dec() }

// errorCounter returns the counter of error code code of a's API.
func (m *Broker) errorCounter(a *apiMetrics, code int16) prometheus.Counter {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.errs[code]
	if !ok {
		c = m.errors.WithLabelValues(a.name, ErrorName(code))
		a.errs[code] = c
	}
	return c
}

// ErrorName is Kafka's name of an error code (UNKNOWN_TOPIC_OR_PARTITION), or the number for a
// code Kafka does not define.
func ErrorName(code int16) string {
	switch code {
	case 0:
		return "NONE"
	case 6:
		return "NOT_LEADER_OR_FOLLOWER" // Kafka's name since 2.7; kerr keeps the old one
	}
	if err := kerr.TypedErrorForCode(code); err != nil && err.Code == code {
		return err.Message
	}
	return strconv.Itoa(int(code))
}
