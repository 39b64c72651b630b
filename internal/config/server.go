package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// ServerDefs are the broker settings Samsa acts on, with Kafka's names and defaults (Samsa's
// defaults differ only where a single-node install needs it or Kafka's would leave the broker
// unprotected, marked "Samsa default"). Settings Kafka has no equivalent of are named
// "samsa.*" (SamsaPrefix), so that they can never clash with one of Kafka's.
var ServerDefs = []Def{
	{Name: "node.id", Type: TypeInt, Default: "1", Min: 0, MinSet: true, Doc: "this node's id (Samsa default 1)"},
	{Name: "process.roles", Type: TypeList, Default: "broker,controller", OneOf: []string{"broker", "controller"}, Doc: "roles of this process (Samsa default broker,controller)"},
	{Name: "listeners", Type: TypeList, Default: "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093", Doc: "listeners as NAME://host:port"},
	{Name: "advertised.listeners", Type: TypeList, NoDefault: true, Doc: "listeners published to clients; defaults to listeners"},
	{Name: "controller.listener.names", Type: TypeList, Default: "CONTROLLER", Doc: "listeners used by the controller quorum"},
	{Name: "inter.broker.listener.name", Type: TypeString, NoDefault: true, Doc: "listener brokers use to talk to each other"},
	{Name: "listener.security.protocol.map", Type: TypeList, Default: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", Doc: "listener name to security protocol"},
	{Name: "controller.quorum.voters", Type: TypeList, Default: "", Doc: "id@host:port of each voter; empty means this node alone"},
	{Name: "controller.quorum.bootstrap.servers", Type: TypeList, Default: "", Doc: "host:port of controllers of a dynamic quorum (KIP-853), where nodes find the active controller"},
	{Name: "broker.heartbeat.interval.ms", Type: TypeInt, Default: "2000", Min: 1, MinSet: true, Doc: "how often a broker heartbeats to the active controller"},
	{Name: "broker.session.timeout.ms", Type: TypeInt, Default: "9000", Min: 1, MinSet: true, Doc: "how long a broker may go without a heartbeat before it is fenced"},
	{Name: "log.dirs", Type: TypeList, NoDefault: true, Doc: "directories of partition data; defaults to log.dir"},
	{Name: "log.dir", Type: TypeString, Default: "./data", Doc: "directory of partition data (Samsa default ./data)"},
	{Name: "metadata.log.dir", Type: TypeString, NoDefault: true, Doc: "directory of the metadata log; defaults to the first log dir"},
	{Name: "num.partitions", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "default partitions of a new topic"},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "default replication factor of a new topic"},
	{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: "true", Doc: "create unknown topics on metadata requests"},
	{Name: "delete.topic.enable", Type: TypeBoolean, Default: "true", Doc: "allow DeleteTopics"},
	{Name: "log.segment.bytes", Type: TypeInt, Default: "1073741824", Min: 14, MinSet: true, Doc: "segment file size"},
	{Name: "log.roll.ms", Type: TypeLong, NoDefault: true, Min: 1, MinSet: true, Doc: "time after which a segment is rolled"},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", Min: 1, MinSet: true, Doc: "log.roll.ms in hours"},
	{Name: "log.roll.jitter.ms", Type: TypeLong, NoDefault: true, Doc: "segment roll jitter"},
	{Name: "log.retention.ms", Type: TypeLong, NoDefault: true, Min: -1, MinSet: true, Doc: "longest a segment is kept; -1 unlimited"},
	{Name: "log.retention.minutes", Type: TypeInt, NoDefault: true, Doc: "log.retention.ms in minutes"},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168", Doc: "log.retention.ms in hours"},
	{Name: "log.retention.bytes", Type: TypeLong, Default: "-1", Doc: "largest partition size before old segments are deleted"},
	{Name: "log.retention.check.interval.ms", Type: TypeLong, Default: "300000", Min: 1, MinSet: true, Doc: "how often retention is checked"},
	{Name: "log.flush.interval.messages", Type: TypeLong, Default: maxLong, Min: 1, MinSet: true, Doc: "fsync after this many messages"},
	{Name: "log.flush.interval.ms", Type: TypeLong, NoDefault: true, Min: 0, MinSet: true, Doc: "fsync at least this often; defaults to log.flush.scheduler.interval.ms"},
	{Name: "log.flush.scheduler.interval.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Doc: "how often the flusher checks"},
	{Name: "log.index.interval.bytes", Type: TypeInt, Default: "4096", Min: 0, MinSet: true, Doc: "bytes between offset index entries"},
	{Name: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", Min: 4, MinSet: true, Doc: "offset index size"},
	{Name: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000", Min: 0, MinSet: true, Doc: "delay before deleted segment files are removed"},
	{Name: "log.message.timestamp.type", Type: TypeString, Default: "CreateTime", OneOf: []string{"CreateTime", "LogAppendTime"}, Doc: "CreateTime or LogAppendTime"},
	{Name: "log.message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Doc: "how far in the past a timestamp may be"},
	{Name: "log.message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Doc: "how far in the future a timestamp may be"},
	{Name: "log.cleanup.policy", Type: TypeList, Default: "delete", OneOf: []string{"delete", "compact"}, Doc: "delete or compact"},
	{Name: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", Doc: "tombstone retention"},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", Doc: "shortest a message stays uncompacted"},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLong, Doc: "longest a message stays uncompacted"},
	{Name: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", Doc: "dirty ratio that triggers compaction"},
	{Name: "log.cleaner.enable", Type: TypeBoolean, Default: "true", Doc: "run the log cleaner, which compacts topics whose cleanup.policy includes compact"},
	{Name: "log.cleaner.threads", Type: TypeInt, Default: "1", Min: 0, MinSet: true, Doc: "log cleaner goroutines (0: none)"},
	{Name: "log.cleaner.dedupe.buffer.size", Type: TypeLong, Default: "134217728", Min: 0, MinSet: true, Doc: "memory of the cleaner's key-to-offset maps, shared by the cleaner threads; taken only while there is cleaning to do"},
	{Name: "log.cleaner.backoff.ms", Type: TypeLong, Default: "15000", Min: 0, MinSet: true, Doc: "how long a cleaner thread sleeps when no log needs cleaning"},
	{Name: "log.cleaner.io.max.bytes.per.second", Type: TypeDouble, Default: "1.7976931348623157E308", Doc: "the cleaner threads' read and write budget together, in bytes per second"},
	{Name: "log.preallocate", Type: TypeBoolean, Default: "false", Doc: "preallocate segment files"},
	{Name: "message.max.bytes", Type: TypeInt, Default: "1048588", Min: 0, MinSet: true, Doc: "largest record batch size"},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", Min: 1, MinSet: true, Doc: "largest request frame"},
	{Name: "compression.type", Type: TypeString, Default: "producer", OneOf: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}, Doc: "final compression of topic data"},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "replicas that must acknowledge an acks=all write"},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", Doc: "allow out-of-sync replicas to become leader"},
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", Min: 1, MinSet: true, Doc: "partitions of __consumer_offsets"},
	{Name: "offsets.topic.segment.bytes", Type: TypeInt, Default: "104857600", Min: 1, MinSet: true, Doc: "segment.bytes of __consumer_offsets when the broker creates it"},
	{Name: "offsets.topic.replication.factor", Type: TypeShort, Default: "1", Min: 1, MinSet: true, Doc: "replication of __consumer_offsets (Samsa default 1 on a single node, 3 in a cluster)"},
	{Name: "transaction.state.log.num.partitions", Type: TypeInt, Default: "50", Min: 1, MinSet: true, Doc: "partitions of __transaction_state"},
	{Name: "add.partitions.to.txn.retry.backoff.ms", Type: TypeInt, Default: "20", Min: 1, MinSet: true, Doc: "how long a partition leader waits before asking the transaction coordinator again to verify or add a transactional batch's partition that it answered CONCURRENT_TRANSACTIONS (the previous transaction's markers still being written)"},
	{Name: "add.partitions.to.txn.retry.backoff.max.ms", Type: TypeInt, Default: "100", Min: 0, MinSet: true, Doc: "how long a partition leader keeps asking again before the produce gets the error"},
	{Name: "transaction.max.timeout.ms", Type: TypeInt, Default: "900000", Min: 1, MinSet: true, Doc: "the largest transaction.timeout.ms a producer may ask for"},
	{Name: "transaction.state.log.replication.factor", Type: TypeShort, Default: "1", Min: 1, MinSet: true, Doc: "replication of __transaction_state (Samsa default 1)"},
	{Name: "transaction.state.log.min.isr", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "min ISR of __transaction_state (Samsa default 1)"},
	{Name: "auto.leader.rebalance.enable", Type: TypeBoolean, Default: "true", Doc: "the active controller periodically elects the preferred replica (the first) leader where another replica leads"},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", Min: 1, MinSet: true, Doc: "how often the active controller checks for partitions not led by their preferred replica"},
	{Name: "samsa.leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "0", Min: 0, MinSet: true, Doc: "Samsa setting: preferred leaders of a broker are elected back once more than this percentage of the partitions it is the preferred replica of are led by another (Kafka's ZooKeeper-mode leader.imbalance.per.broker.percentage, removed in Kafka 4.0; Kafka 4's controller acts on any imbalance, as 0 does here)"},
	{Name: "replica.lag.time.max.ms", Type: TypeLong, Default: "30000", Doc: "how long a follower may lag before leaving the ISR"},
	{Name: "replica.selector.class", Type: TypeString, NoDefault: true, OneOf: []string{"", RackAwareReplicaSelector, "org.apache.kafka.common.replica.LeaderSelector"}, Doc: "which replica a consumer fetches from (KIP-392): unset or LeaderSelector the leader, RackAwareReplicaSelector a replica in the consumer's rack"},
	{Name: "num.replica.fetchers", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "fetcher goroutines per source broker"},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500", Min: 0, MinSet: true, Doc: "longest a follower's fetch waits at the leader"},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "bytes a follower's fetch waits for"},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", Min: 0, MinSet: true, Doc: "bytes a follower fetches per partition"},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", Min: 0, MinSet: true, Doc: "bytes of one follower fetch response"},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", Min: 0, MinSet: true, Doc: "pause after a follower fetch error"},
	{Name: "replica.high.watermark.checkpoint.interval.ms", Type: TypeLong, Default: "5000", Min: 1, MinSet: true, Doc: "how often high watermarks are written to disk"},
	{Name: "max.incremental.fetch.session.cache.slots", Type: TypeInt, Default: "1000", Min: 0, MinSet: true, Doc: "most incremental fetch sessions (KIP-227) the broker keeps; 0: none"},
	{Name: "max.request.partition.size.limit", Type: TypeInt, Default: "2000", Min: 1, MinSet: true, Doc: "most partitions one DescribeTopicPartitions response describes (the request's own limit may be lower); the client pages with the response's cursor"},
	{Name: "fetch.max.bytes", Type: TypeInt, Default: "57671680", Min: 0, MinSet: true, Doc: "largest fetch response"},
	{Name: "connections.max.idle.ms", Type: TypeLong, Default: "600000", Doc: "close idle connections after this long"},
	{Name: "queued.max.request.bytes", Type: TypeLong, Default: "104857600", Doc: "most bytes of requests being received or waiting to be handled, across all connections; readers stop reading while it is reached; -1 or 0: unbounded (Samsa default 104857600, Kafka's -1; raised to socket.request.max.bytes when that is larger and this is not set)"},
	{Name: "samsa.request.read.timeout.ms", Type: TypeLong, Default: "30000", Min: 1, MinSet: true, Doc: "Samsa setting: a request frame must arrive whole within this long of its first byte, else the connection is closed"},
	{Name: "samsa.log.dir.min.free.bytes", Type: TypeLong, Default: "67108864", Min: 0, MinSet: true, Doc: "Samsa setting: partition-data appends (Produce, group writes) are refused with KAFKA_STORAGE_ERROR, and topics are not created, while the log directory has less than this many bytes free, so data never takes the space the metadata log and checkpoints need; 0 disables"},
	{Name: "samsa.metadata.reserve.bytes", Type: TypeLong, Default: "67108864", Min: 0, MinSet: true, Doc: "Samsa setting: space reserved beside the metadata log (metadata.reserve) and released 1 MiB at a time when the metadata log finds the disk full; 0: none"},
	{Name: "samsa.max.partitions.per.broker", Type: TypeInt, NoDefault: true, Min: 1, MinSet: true, Doc: "Samsa setting: most partition replicas this broker may host; CreateTopics, CreatePartitions and auto-creation beyond it get POLICY_VIOLATION; by default 8 per descriptor of the storage file cache (three quarters of RLIMIT_NOFILE)"},
	{Name: "samsa.metrics.address", Type: TypeString, Default: "", Doc: "Samsa setting: host:port where the node serves its Prometheus metrics (GET /metrics; port 0 picks one); empty (the default): no endpoint, no port opened"},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", Min: 1, MinSet: true, Doc: "expire idle producer ids"},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", Doc: "delay of a new group's first rebalance"},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000", Min: 0, MinSet: true, Doc: "smallest session timeout a classic group member may ask for"},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000", Min: 0, MinSet: true, Doc: "largest session timeout a classic group member may ask for"},
	{Name: "group.max.size", Type: TypeInt, Default: "2147483647", Min: 1, MinSet: true, Doc: "most members of a classic group"},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", Min: 1, MinSet: true, Doc: "keep committed offsets of empty groups this long"},
	{Name: "offsets.retention.check.interval.ms", Type: TypeLong, Default: "600000", Min: 1, MinSet: true, Doc: "how often expired offsets are removed"},
	{Name: "offset.metadata.max.bytes", Type: TypeInt, Default: "4096", Min: 0, MinSet: true, Doc: "largest metadata string of a committed offset"},
	{Name: "group.consumer.heartbeat.interval.ms", Type: TypeInt, Default: "5000", Min: 1, MinSet: true, Doc: "heartbeat interval of consumer (KIP-848) group members"},
	{Name: "group.consumer.session.timeout.ms", Type: TypeInt, Default: "45000", Min: 1, MinSet: true, Doc: "session timeout of consumer (KIP-848) group members"},
	{Name: "group.consumer.max.size", Type: TypeInt, Default: "2147483647", Min: 1, MinSet: true, Doc: "most members of a consumer (KIP-848) group"},
	{Name: "group.consumer.assignors", Type: TypeList, Default: "uniform,range", OneOf: []string{"uniform", "range", "org.apache.kafka.coordinator.group.assignor.UniformAssignor", "org.apache.kafka.coordinator.group.assignor.RangeAssignor"}, Doc: "server-side assignors of consumer (KIP-848) groups, the first the default (Kafka's class names are accepted too)"},
	{Name: "group.consumer.migration.policy", Type: TypeString, Default: "bidirectional", OneOf: []string{"bidirectional", "upgrade", "downgrade", "disabled"}, Doc: "whether classic groups with members convert to consumer (KIP-848) groups when a consumer-protocol member joins (upgrade), and back when the last one leaves (downgrade)"},
	{Name: "broker.rack", Type: TypeString, NoDefault: true, Doc: "rack of this broker"},
	{Name: "quota.window.num", Type: TypeInt, Default: "11", Min: 1, MinSet: true, Doc: "samples client quota rates are measured over"},
	{Name: "quota.window.size.seconds", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "time span of each client quota sample; request-percentage and connection-rate throttles are capped at one"},
	{Name: "controller.quota.window.num", Type: TypeInt, Default: "11", Min: 1, MinSet: true, Doc: "samples of controller mutation quotas (controller_mutation_rate): a client's burst is the quota × this × controller.quota.window.size.seconds"},
	{Name: "controller.quota.window.size.seconds", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "time span of each controller mutation quota sample"},
	{Name: "leader.replication.throttled.rate", Type: TypeLong, Default: "9223372036854775807", Min: 0, MinSet: true, Doc: "bytes per second a leader sends to out-of-sync followers of the replicas listed in a topic's leader.replication.throttled.replicas (KIP-73); dynamic per broker"},
	{Name: "follower.replication.throttled.rate", Type: TypeLong, Default: "9223372036854775807", Min: 0, MinSet: true, Doc: "bytes per second a follower fetches for the out-of-sync replicas listed in a topic's follower.replication.throttled.replicas (KIP-73); dynamic per broker"},
	{Name: "replication.quota.window.num", Type: TypeInt, Default: "11", Min: 1, MinSet: true, Doc: "samples replication throttle rates are measured over"},
	{Name: "replication.quota.window.size.seconds", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Doc: "time span of each replication throttle sample"},
	{Name: "max.connections", Type: TypeInt, Default: "2147483647", Min: 0, MinSet: true, Doc: "most connections the broker holds; beyond it new connections wait to be accepted (the inter-broker listener is not counted against it when there are other listeners); listener.name.<listener>.max.connections bounds one listener"},
	{Name: "max.connections.per.ip", Type: TypeInt, Default: "2147483647", Min: 0, MinSet: true, Doc: "most connections from one ip address; a connection beyond it is closed at once (0 only with max.connections.per.ip.overrides)"},
	{Name: "max.connections.per.ip.overrides", Type: TypeString, Default: "", Doc: "per-ip or hostname overrides of max.connections.per.ip: host:N,host:N"},
	{Name: "max.connection.creation.rate", Type: TypeInt, Default: "2147483647", Min: 0, MinSet: true, Doc: "most connections accepted per second, broker-wide (listener.name.<listener>.max.connection.creation.rate per listener); accepts beyond it are delayed"},
}

// SamsaPrefix starts the names of the settings that are Samsa's own.
const SamsaPrefix = "samsa."

// RackAwareReplicaSelector is Kafka's replica.selector.class that sends a consumer to a
// replica in its rack (client.rack), KIP-392.
const RackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

var serverDefsByName = func() map[string]*Def {
	m := make(map[string]*Def, len(ServerDefs))
	for i := range ServerDefs {
		m[ServerDefs[i].Name] = &ServerDefs[i]
	}
	return m
}()

// ServerDef returns the definition of a broker setting, or nil.
func ServerDef(name string) *Def { return serverDefsByName[name] }

// Listener is one parsed listener: NAME://host:port.
type Listener struct {
	Name     string
	Host     string
	Port     int
	Protocol string // security protocol from listener.security.protocol.map
}

// Addr returns host:port.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// Server is the validated broker configuration.
type Server struct {
	// Explicit holds every setting given in the file or on the command line.
	Explicit map[string]string
	// Ignored lists the given Kafka settings that Samsa accepts but does not act on yet.
	Ignored []string

	NodeID             int32
	Broker, Controller bool
	// Voters is controller.quorum.voters; empty for a single node that is its own quorum and
	// for a dynamic quorum.
	Voters []Voter
	// BootstrapServers is controller.quorum.bootstrap.servers (host:port): the controllers of
	// a dynamic quorum (KIP-853) nodes find the active controller through.
	BootstrapServers       []string
	Listeners              []Listener
	AdvertisedListeners    []Listener
	ControllerListener     string
	LogDirs                []string
	MetadataLogDir         string
	NumPartitions          int32
	DefaultReplication     int16
	AutoCreateTopics       bool
	DeleteTopicEnable      bool
	MessageMaxBytes        int32
	SocketRequestMaxBytes  int32
	RetentionCheckInterval int64
	FlushSchedulerInterval int64
	FetchMaxBytes          int32
	QueuedMaxRequestBytes  int64 // queued.max.request.bytes in effect; <= 0: unbounded

	// ControllerProtocol is the controller listener's security protocol (from
	// listener.security.protocol.map), also on a broker-only node, whose Raft transport and
	// controller client use it; PLAINTEXT when the map does not name it.
	ControllerProtocol string
}

// Value returns the effective value of a broker setting: explicit, else the default. ok is
// false for settings Kafka does not define; a null default yields "", true.
func (s *Server) Value(name string) (string, bool) {
	if v, ok := s.Explicit[name]; ok {
		return v, true
	}
	bs, ok := LookupBrokerSetting(name)
	if !ok {
		return "", false
	}
	return bs.Def.Default, true
}

func (s *Server) int64Value(name string) int64 {
	v, _ := s.Value(name)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// LoadServer validates props (from a properties file plus overrides) and builds a Server.
// Every Kafka broker setting is recognized: served, accepted with no effect (listed in
// Ignored) or refused. Unknown (with the closest known name suggested), refused or invalid
// settings are errors that name the setting.
func LoadServer(props map[string]string) (*Server, error) {
	s := &Server{Explicit: make(map[string]string, len(props))}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := props[k]
		bs, err := CheckBrokerSetting("setting", k, v)
		if err != nil {
			return nil, err
		}
		if bs.Support == NoEffect {
			s.Ignored = append(s.Ignored, k)
		}
		s.Explicit[k] = v
	}
	atoi := func(name string) int64 { return s.int64Value(name) }
	s.NodeID = int32(atoi("node.id"))
	if err := s.loadRoles(); err != nil {
		return nil, err
	}
	protoMap := map[string]string{}
	pm, _ := s.Value("listener.security.protocol.map")
	for _, e := range splitList(pm) {
		name, proto, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("invalid listener.security.protocol.map entry %q", e)
		}
		protoMap[strings.ToUpper(name)] = strings.ToUpper(proto)
	}
	cl, _ := s.Value("controller.listener.names")
	s.ControllerListener = strings.ToUpper(firstOf(splitList(cl)))
	s.ControllerProtocol = protoMap[s.ControllerListener]
	if s.ControllerProtocol == "" {
		s.ControllerProtocol = ProtocolPlaintext
	}
	ls, _ := s.Value("listeners")
	var err error
	if s.Listeners, err = parseListeners("listeners", ls, protoMap); err != nil {
		return nil, err
	}
	if _, ok := s.ControllerListenerAddr(); s.Controller && !ok {
		return nil, fmt.Errorf("controller.listener.names=%s: no such listener in listeners", s.ControllerListener)
	}
	if err := s.loadQuorum(); err != nil {
		return nil, err
	}
	if err := s.checkSecurity(); err != nil {
		return nil, err
	}
	if s.Broker && len(s.ClientListeners()) == 0 {
		return nil, fmt.Errorf("listeners: no listener for clients besides %s", s.ControllerListener)
	}
	if !s.Controller {
		if _, ok := s.ControllerListenerAddr(); ok {
			return nil, fmt.Errorf("listeners: %s is a controller listener, but process.roles has no controller role", s.ControllerListener)
		}
	}
	if al, ok := s.Explicit["advertised.listeners"]; ok && al != "" {
		if s.AdvertisedListeners, err = parseListeners("advertised.listeners", al, protoMap); err != nil {
			return nil, err
		}
	}
	dirs := s.Explicit["log.dirs"]
	if dirs == "" {
		dirs, _ = s.Value("log.dir")
	}
	s.LogDirs = splitList(dirs)
	if len(s.LogDirs) == 0 {
		return nil, fmt.Errorf("log.dirs: no directory given")
	}
	if len(s.LogDirs) > 1 {
		return nil, fmt.Errorf("log.dirs: more than one log directory is not supported yet")
	}
	s.MetadataLogDir = s.Explicit["metadata.log.dir"]
	if s.MetadataLogDir == "" {
		s.MetadataLogDir = s.LogDirs[0]
	}
	s.NumPartitions = int32(atoi("num.partitions"))
	s.DefaultReplication = int16(atoi("default.replication.factor"))
	s.AutoCreateTopics, _ = strconv.ParseBool(mustValue(s, "auto.create.topics.enable"))
	s.DeleteTopicEnable, _ = strconv.ParseBool(mustValue(s, "delete.topic.enable"))
	s.MessageMaxBytes = int32(atoi("message.max.bytes"))
	s.SocketRequestMaxBytes = int32(atoi("socket.request.max.bytes"))
	s.QueuedMaxRequestBytes = atoi("queued.max.request.bytes")
	if _, set := s.Explicit["queued.max.request.bytes"]; !set {
		s.QueuedMaxRequestBytes = max(s.QueuedMaxRequestBytes, int64(s.SocketRequestMaxBytes))
	} else if s.QueuedMaxRequestBytes > 0 && s.QueuedMaxRequestBytes < int64(s.SocketRequestMaxBytes) {
		// Kafka's own check: a frame of the largest size must fit in the bound.
		return nil, fmt.Errorf("queued.max.request.bytes must be larger or equal to socket.request.max.bytes")
	}
	s.RetentionCheckInterval = atoi("log.retention.check.interval.ms")
	s.FlushSchedulerInterval = atoi("log.flush.scheduler.interval.ms")
	s.FetchMaxBytes = int32(atoi("fetch.max.bytes"))
	if err := s.checkConnectionLimits(); err != nil {
		return nil, err
	}
	if err := s.checkMetricsAddress(); err != nil {
		return nil, err
	}
	return s, nil
}

// MetricsAddress is samsa.metrics.address: where the Prometheus endpoint listens, "" for none.
func (s *Server) MetricsAddress() string {
	return strings.TrimSpace(mustValue(s, "samsa.metrics.address"))
}

// checkMetricsAddress refuses a samsa.metrics.address that is not host:port.
func (s *Server) checkMetricsAddress() error {
	a := s.MetricsAddress()
	if a == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(a)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("samsa.metrics.address=%s: want host:port: %w", a, err)
	}
	return nil
}

func mustValue(s *Server, name string) string { v, _ := s.Value(name); return v }

func firstOf(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseListeners(setting, v string, protoMap map[string]string) ([]Listener, error) {
	var out []Listener
	for _, e := range splitList(v) {
		name, addr, ok := strings.Cut(e, "://")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not NAME://host:port", setting, e)
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", setting, e, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("%s: %q: bad port", setting, e)
		}
		name = strings.ToUpper(name)
		proto, ok := protoMap[name]
		if !ok {
			return nil, fmt.Errorf("%s: listener %s has no entry in listener.security.protocol.map", setting, name)
		}
		out = append(out, Listener{Name: name, Host: host, Port: port, Protocol: proto})
	}
	return out, nil
}

// ClientListeners returns the listeners that serve Kafka clients (all but the controller's).
func (s *Server) ClientListeners() []Listener {
	var out []Listener
	for _, l := range s.Listeners {
		if l.Name != s.ControllerListener {
			out = append(out, l)
		}
	}
	return out
}

// ControllerListenerAddr returns the controller listener, if configured.
func (s *Server) ControllerListenerAddr() (Listener, bool) {
	for _, l := range s.Listeners {
		if l.Name == s.ControllerListener {
			return l, true
		}
	}
	return Listener{}, false
}

// AdvertisedControllerAddr returns the address other nodes reach this node's controller
// listener at: its entry in advertised.listeners, else in listeners, with "localhost" for an
// empty host (as kafka-storage format --standalone does). A port of 0 is an error: the address
// is written down before the node listens.
func (s *Server) AdvertisedControllerAddr() (host string, port int, err error) {
	l, ok := s.ControllerListenerAddr()
	if !ok {
		return "", 0, fmt.Errorf("no controller listener (%s) in listeners", s.ControllerListener)
	}
	for _, a := range s.AdvertisedListeners {
		if a.Name == l.Name {
			l = a
		}
	}
	if l.Port == 0 {
		return "", 0, fmt.Errorf("the controller listener %s has port 0: give it a fixed port", l.Name)
	}
	if l.Host == "" {
		l.Host = "localhost"
	}
	return l.Host, l.Port, nil
}

// TopicDefaults returns, for every topic config, the value the broker settings give it and
// the broker setting it came from ("" when it is Kafka's built-in default).
func (s *Server) TopicDefaults() map[string]TopicDefault {
	out := make(map[string]TopicDefault, len(TopicDefs))
	for _, d := range TopicDefs {
		td := TopicDefault{Value: d.Default}
		if v, ok := s.Explicit[d.Synonym]; ok {
			td = TopicDefault{Value: v, Source: d.Synonym}
		}
		out[d.Name] = td
	}
	// Settings Kafka derives from several broker settings.
	if v, ok := s.Explicit["log.retention.ms"]; ok {
		out["retention.ms"] = TopicDefault{Value: v, Source: "log.retention.ms"}
	} else if v, ok := s.Explicit["log.retention.minutes"]; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		out["retention.ms"] = TopicDefault{Value: strconv.FormatInt(n*60_000, 10), Source: "log.retention.minutes"}
	} else if v, ok := s.Explicit["log.retention.hours"]; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		out["retention.ms"] = TopicDefault{Value: strconv.FormatInt(n*3_600_000, 10), Source: "log.retention.hours"}
	}
	if v, ok := s.Explicit["log.roll.ms"]; ok {
		out["segment.ms"] = TopicDefault{Value: v, Source: "log.roll.ms"}
	} else if v, ok := s.Explicit["log.roll.hours"]; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		out["segment.ms"] = TopicDefault{Value: strconv.FormatInt(n*3_600_000, 10), Source: "log.roll.hours"}
	}
	if _, ok := s.Explicit["log.flush.interval.ms"]; !ok {
		if v, ok := s.Explicit["log.flush.scheduler.interval.ms"]; ok {
			out["flush.ms"] = TopicDefault{Value: v, Source: "log.flush.scheduler.interval.ms"}
		}
	}
	return out
}

// TopicDefault is a topic config's value before any topic override.
type TopicDefault struct {
	Value  string
	Source string // the broker setting it comes from, or "" for Kafka's default
}

// Int64 returns a numeric setting's effective value (0 when unset with a null default).
func (s *Server) Int64(name string) int64 { return s.int64Value(name) }

// Bool returns the effective value of a boolean broker setting (false when unset or invalid).
func (s *Server) Bool(name string) bool {
	v, _ := s.Value(name)
	b, _ := strconv.ParseBool(v)
	return b
}
