package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// BrokersEnv names the environment variable with the bootstrap brokers used when
	// --brokers is not given.
	BrokersEnv = "SAMSA_BROKERS"
	// DefaultBrokers is where the client commands connect without --brokers or $SAMSA_BROKERS.
	DefaultBrokers = "localhost:9092"
	// BrokersUsage is the help text of --brokers.
	BrokersUsage = "comma-separated bootstrap brokers, host:port (default: $" + BrokersEnv + " if set, else " + DefaultBrokers + ")"
)

// ResolveBrokers picks the bootstrap brokers: the --brokers value when the flag was given
// (flagSet), else env (the value of $SAMSA_BROKERS) when it is not empty, else DefaultBrokers.
func ResolveBrokers(flag string, flagSet bool, env string) ([]string, error) {
	switch {
	case flagSet:
		return SplitBrokers(flag)
	case env != "":
		brokers, err := SplitBrokers(env)
		if err != nil {
			return nil, fmt.Errorf("$%s=%q: %w", BrokersEnv, env, err)
		}
		return brokers, nil
	}
	return SplitBrokers(DefaultBrokers)
}

// SplitBrokers splits a comma-separated list of host:port seeds, trimming spaces and dropping
// empty entries. It fails when no broker remains.
func SplitBrokers(list string) ([]string, error) {
	brokers := SplitList(list)
	if len(brokers) == 0 {
		return nil, errors.New("no brokers given (--brokers host:port[,host:port...])")
	}
	return brokers, nil
}

// SplitList splits a comma-separated list, trimming spaces and dropping empty entries.
func SplitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// KeyValue is one parsed k=v argument.
type KeyValue struct {
	Key   string
	Value string
}

// ParseKeyValue splits "k=v" at the first '='. The key must be non-empty; the value may be
// empty ("k=") and may itself contain '='.
func ParseKeyValue(s string) (KeyValue, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return KeyValue{}, fmt.Errorf("invalid %q: expected key=value", s)
	}
	if k = strings.TrimSpace(k); k == "" {
		return KeyValue{}, fmt.Errorf("invalid %q: empty key", s)
	}
	return KeyValue{Key: k, Value: v}, nil
}

// ParseKeyValues parses every argument with ParseKeyValue, keeping the order given.
func ParseKeyValues(args []string) ([]KeyValue, error) {
	kvs := make([]KeyValue, 0, len(args))
	for _, a := range args {
		kv, err := ParseKeyValue(a)
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, kv)
	}
	return kvs, nil
}

// ParseConfigs parses k=v topic config arguments into the map form kadm expects. A key given
// twice is an error, since only one of the values could be applied.
func ParseConfigs(args []string) (map[string]*string, error) {
	kvs, err := ParseKeyValues(args)
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 {
		return nil, nil
	}
	configs := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		if _, dup := configs[kv.Key]; dup {
			return nil, fmt.Errorf("config %q given more than once", kv.Key)
		}
		configs[kv.Key] = &kv.Value
	}
	return configs, nil
}

// ParseHeaders parses k=v header arguments into record headers, in the order given. A header
// key may repeat, as Kafka allows.
func ParseHeaders(args []string) ([]kgo.RecordHeader, error) {
	kvs, err := ParseKeyValues(args)
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 {
		return nil, nil
	}
	headers := make([]kgo.RecordHeader, 0, len(kvs))
	for _, kv := range kvs {
		headers = append(headers, kgo.RecordHeader{Key: kv.Key, Value: []byte(kv.Value)})
	}
	return headers, nil
}

// Acks is a parsed --acks value.
type Acks struct {
	// Opt is the kgo option requiring these acks.
	Opt kgo.Acks
	// All reports whether every in-sync replica must acknowledge (acks=all), the only level at
	// which kgo's idempotent producer may be used.
	All bool
}

// ParseAcks parses "all" (or its synonym "-1"), "1" or "0".
func ParseAcks(s string) (Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "-1":
		return Acks{Opt: kgo.AllISRAcks(), All: true}, nil
	case "1":
		return Acks{Opt: kgo.LeaderAck()}, nil
	case "0":
		return Acks{Opt: kgo.NoAck()}, nil
	}
	return Acks{}, fmt.Errorf("invalid acks %q: expected all, 1 or 0", s)
}

// ParseCompression parses a compression codec name: none, gzip, snappy, lz4 or zstd.
func ParseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("invalid compression %q: expected none, gzip, snappy, lz4 or zstd", s)
}

// StartOffset is a parsed --from value.
type StartOffset struct {
	// Offset is the kgo start offset.
	Offset kgo.Offset
	// Desc is a normalized description for messages, e.g. "offset 42".
	Desc string
}

// ParseStartOffset parses where consuming starts: "beginning", "end", "offset:N" (N >= 0) or
// "timestamp:T" where T is RFC 3339 (e.g. 2024-05-01T10:00:00Z) or milliseconds since the
// Unix epoch. A timestamp starts at the first record whose timestamp is at or after T.
func ParseStartOffset(s string) (StartOffset, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "beginning", "earliest", "start":
		return StartOffset{Offset: kgo.NewOffset().AtStart(), Desc: "beginning"}, nil
	case "end", "latest":
		return StartOffset{Offset: kgo.NewOffset().AtEnd(), Desc: "end"}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if ok {
		switch strings.ToLower(kind) {
		case "offset":
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil || n < 0 {
				return StartOffset{}, fmt.Errorf("invalid start %q: offset must be a non-negative integer", s)
			}
			return StartOffset{Offset: kgo.NewOffset().At(n), Desc: "offset " + arg}, nil
		case "timestamp":
			ms, err := parseTimestampMillis(arg)
			if err != nil {
				return StartOffset{}, fmt.Errorf("invalid start %q: %w", s, err)
			}
			return StartOffset{Offset: kgo.NewOffset().AfterMilli(ms), Desc: "timestamp " + strconv.FormatInt(ms, 10)}, nil
		}
	}
	return StartOffset{}, fmt.Errorf("invalid start %q: expected beginning, end, offset:N or timestamp:RFC3339-or-ms", s)
}

// parseTimestampMillis accepts what ParseTimestamp does, refusing times before 1970.
func parseTimestampMillis(s string) (int64, error) {
	ms, err := ParseTimestamp(s)
	if err != nil {
		return 0, err
	}
	if ms < 0 {
		return 0, errors.New("timestamp must not be before 1970")
	}
	return ms, nil
}
