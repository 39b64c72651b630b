package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a config value's type, as Kafka's DescribeConfigs reports it (v3+).
type Type int8

// Config types, numbered as in Kafka's DescribeConfigs ConfigType.
const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

// Def describes one setting: its Kafka name, type, default and how a value is checked.
type Def struct {
	Name    string
	Type    Type
	Default string // "" with HasDefault=false means no default (null)
	// NoDefault marks settings whose Kafka default is null.
	NoDefault bool
	// Min is the smallest accepted numeric value (inclusive); MinSet says whether it applies.
	Min    float64
	MinSet bool
	// OneOf lists the accepted values of an enumerated string (or each element of a list).
	OneOf []string
	// Synonym is, for a topic config, the broker setting that provides its default.
	Synonym string
	// Doc is the one-line description reported in DescribeConfigs documentation.
	Doc string
}

// Validate checks a value against the definition and returns an error naming the setting.
func (d *Def) Validate(v string) error {
	bad := func(why string) error { return fmt.Errorf("invalid value %q for %s: %s", v, d.Name, why) }
	switch d.Type {
	case TypeBoolean:
		if v != "true" && v != "false" {
			return bad("expected true or false")
		}
	case TypeInt, TypeShort, TypeLong:
		bits := 64
		if d.Type == TypeInt {
			bits = 32
		} else if d.Type == TypeShort {
			bits = 16
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return bad("expected an integer")
		}
		if d.MinSet && float64(n) < d.Min {
			return bad(fmt.Sprintf("must be at least %v", d.Min))
		}
	case TypeDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return bad("expected a number")
		}
		if d.MinSet && f < d.Min {
			return bad(fmt.Sprintf("must be at least %v", d.Min))
		}
	case TypeString, TypeList:
		if throttledReplicaLists[d.Name] && !validThrottledReplicas(v) {
			return bad("must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
		}
		if len(d.OneOf) > 0 {
			items := []string{v}
			if d.Type == TypeList {
				items = strings.Split(v, ",")
			}
			for _, it := range items {
				it = strings.TrimSpace(it)
				if !contains(d.OneOf, it) {
					return bad(expectedOneOf(d.OneOf))
				}
			}
		}
	}
	return nil
}

// throttledReplicaLists are the topic configs naming throttled replicas (KIP-73).
var throttledReplicaLists = map[string]bool{
	"leader.replication.throttled.replicas":   true,
	"follower.replication.throttled.replicas": true,
}

// validThrottledReplicas checks a throttled replicas list as Kafka's
// ThrottledReplicaListValidator does: empty, "*", or partition:broker entries.
func validThrottledReplicas(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return true
	}
	for _, e := range strings.Split(v, ",") {
		ps, bs, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok {
			return false
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(ps), 10, 31); err != nil {
			return false
		}
		if _, err := strconv.ParseUint(strings.TrimSpace(bs), 10, 31); err != nil {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const maxLong = "9223372036854775807"

func minOf(n float64) (float64, bool) { return n, true }

// TopicDefs are the per-topic settings Samsa knows, with the broker settings that give their
// defaults (Kafka's synonyms).
var TopicDefs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", OneOf: []string{"delete", "compact"}, Synonym: "log.cleanup.policy", Doc: "delete or compact old log segments"},
	{Name: "compression.type", Type: TypeString, Default: "producer", OneOf: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}, Synonym: "compression.type", Doc: "final compression of the topic's data; producer keeps the producer's"},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", Min: 0, MinSet: true, Synonym: "log.cleaner.delete.retention.ms", Doc: "how long delete tombstones are kept on compacted topics"},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", Min: 0, MinSet: true, Synonym: "log.segment.delete.delay.ms", Doc: "delay before a deleted segment's files are removed"},
	{Name: "flush.messages", Type: TypeLong, Default: maxLong, Min: 1, MinSet: true, Synonym: "log.flush.interval.messages", Doc: "fsync after this many messages"},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Synonym: "log.flush.interval.ms", Doc: "fsync at least this often"},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "", Doc: "replicas whose follower fetches are throttled (KIP-73): partition:broker,... or *; the follower side of follower.replication.throttled.rate"},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", Min: 0, MinSet: true, Synonym: "log.index.interval.bytes", Doc: "bytes between offset index entries"},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "", Doc: "replicas whose leader side is throttled (KIP-73): partition:broker,... or *; the leader side of leader.replication.throttled.rate"},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLong, Min: 1, MinSet: true, Synonym: "log.cleaner.max.compaction.lag.ms", Doc: "longest a message stays uncompacted"},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", Min: 0, MinSet: true, Synonym: "message.max.bytes", Doc: "largest record batch size allowed"},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Synonym: "log.message.timestamp.after.max.ms", Doc: "how far in the future a CreateTime timestamp may be"},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, Min: 0, MinSet: true, Synonym: "log.message.timestamp.before.max.ms", Doc: "how far in the past a CreateTime timestamp may be"},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", OneOf: []string{"CreateTime", "LogAppendTime"}, Synonym: "log.message.timestamp.type", Doc: "CreateTime or LogAppendTime"},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", Min: 0, MinSet: true, Synonym: "log.cleaner.min.cleanable.ratio", Doc: "dirty ratio that triggers compaction"},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", Min: 0, MinSet: true, Synonym: "log.cleaner.min.compaction.lag.ms", Doc: "shortest a message stays uncompacted"},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Min: 1, MinSet: true, Synonym: "min.insync.replicas", Doc: "replicas that must acknowledge an acks=all write"},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", Synonym: "log.preallocate", Doc: "preallocate segment files"},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", Synonym: "log.retention.bytes", Doc: "largest size of a partition's log before old segments are deleted; -1 unlimited"},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", Min: -1, MinSet: true, Synonym: "log.retention.ms", Doc: "longest a segment is kept; -1 unlimited"},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", Min: 14, MinSet: true, Synonym: "log.segment.bytes", Doc: "segment file size"},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", Min: 4, MinSet: true, Synonym: "log.index.size.max.bytes", Doc: "offset index size"},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", Min: 0, MinSet: true, Synonym: "log.roll.jitter.ms", Doc: "random jitter subtracted from segment.ms"},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", Min: 1, MinSet: true, Synonym: "log.roll.ms", Doc: "time after which a segment is rolled"},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", Synonym: "unclean.leader.election.enable", Doc: "allow out-of-sync replicas to become leader"},
}

var topicDefsByName = func() map[string]*Def {
	m := make(map[string]*Def, len(TopicDefs))
	for i := range TopicDefs {
		m[TopicDefs[i].Name] = &TopicDefs[i]
	}
	return m
}()

// TopicDef returns the definition of a topic config, or nil.
func TopicDef(name string) *Def { return topicDefsByName[name] }

// ValidateTopicConfig checks one topic config name and value.
func ValidateTopicConfig(name, value string) error {
	d := topicDefsByName[name]
	if d == nil {
		return fmt.Errorf("unknown topic config %s", name)
	}
	return d.Validate(value)
}

var _ = math.MaxInt64

// expectedOneOf is the message of a value not in oneOf (an empty value, when accepted, named
// as such).
func expectedOneOf(oneOf []string) string {
	var named []string
	empty := ""
	for _, v := range oneOf {
		if v == "" {
			empty = " (or empty)"
		} else {
			named = append(named, v)
		}
	}
	return "expected one of " + strings.Join(named, ", ") + empty
}
