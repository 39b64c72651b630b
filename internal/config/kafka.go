package config

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
)

// kafkaBrokerSettingsText is Apache Kafka 4.1's list of broker settings, generated from Kafka's
// own ConfigDef by gen/generate.sh.
//
//go:embed kafka_broker_settings.txt
var kafkaBrokerSettingsText string

// Support is what Samsa does with one of Kafka's broker settings.
type Support int8

const (
	// Served settings are acted on (ServerDefs).
	Served Support = iota
	// NoEffect settings are accepted, type-checked, reported at start as not supported yet,
	// and described with Kafka's default; Samsa does not act on them.
	NoEffect
	// Refused settings stop the server and fail AlterConfigs: accepting them silently would
	// promise something Samsa does not do (security, Java plugin classes).
	Refused
)

// Kafka's dynamic update modes (the "Update Mode" of Kafka's broker configuration docs).
const (
	ModeReadOnly    = "read-only"
	ModePerBroker   = "per-broker"
	ModeClusterWide = "cluster-wide"
)

// BrokerSetting is one broker setting Kafka defines, and what Samsa does with it.
type BrokerSetting struct {
	// Def is the setting's definition: for a served setting its ServerDefs entry, else
	// Kafka's type and default.
	Def *Def
	// Support says whether Samsa acts on it, ignores it or refuses it.
	Support Support
	// Mode is Kafka's dynamic update mode: ModeReadOnly, ModePerBroker or ModeClusterWide.
	Mode string
	// Reason says, for a refused setting, why Samsa refuses it.
	Reason string
}

// Dynamic reports whether Kafka lets the setting change at run time.
func (s *BrokerSetting) Dynamic() bool { return s.Mode != ModeReadOnly }

// refusedPrefixes and refusedSettings are the Kafka settings Samsa refuses, with the reason.
var refusedPrefixes = []struct{ prefix, reason string }{
	{"ssl.", "Samsa serves TLS with PEM and PKCS12 key and trust stores only (the ssl.* settings it serves are listed in its README)"},
	{"sasl.", "Samsa serves the SASL mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (server side) only, configured per listener"},
	{"listener.name.", "only the TLS and SASL settings Samsa serves may be given per listener"},
}

var refusedSettings = map[string]string{
	"principal.builder.class":        "Samsa cannot load Java principal builders",
	"security.providers":             "Samsa cannot load Java security providers",
	"create.topic.policy.class.name": "Samsa cannot load Java policy classes",
	"alter.config.policy.class.name": "Samsa cannot load Java policy classes",
	"client.quota.callback.class":    "Samsa cannot load Java quota callbacks",
}

// refusal returns why Samsa refuses a setting, or "".
func refusal(name string) string {
	if r, ok := refusedSettings[name]; ok {
		return r
	}
	for _, p := range refusedPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.reason
		}
	}
	return ""
}

var kafkaTypes = map[string]Type{
	"BOOLEAN": TypeBoolean, "STRING": TypeString, "INT": TypeInt, "SHORT": TypeShort, "LONG": TypeLong,
	"DOUBLE": TypeDouble, "LIST": TypeList, "CLASS": TypeClass, "PASSWORD": TypePassword,
}

// brokerSettings maps every Kafka broker setting name (and every served one) to its entry;
// brokerSettingNames lists them sorted.
var brokerSettings, brokerSettingNames = parseKafkaBrokerSettings(kafkaBrokerSettingsText)

func parseKafkaBrokerSettings(text string) (map[string]*BrokerSetting, []string) {
	m := make(map[string]*BrokerSetting, 400)
	for i, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			panic(fmt.Sprintf("kafka_broker_settings.txt:%d: want 4 fields, got %q", i+1, line))
		}
		typ, ok := kafkaTypes[f[1]]
		if !ok {
			panic(fmt.Sprintf("kafka_broker_settings.txt:%d: unknown type %q", i+1, f[1]))
		}
		d := &Def{Name: f[0], Type: typ, Default: f[3], Doc: "not supported yet: Samsa accepts this Kafka setting and it has no effect"}
		switch f[3] {
		case "(null)", "(none)":
			d.Default, d.NoDefault = "", true
		case "(empty)":
			d.Default = ""
		}
		s := &BrokerSetting{Def: d, Support: NoEffect, Mode: f[2]}
		if r := refusal(f[0]); r != "" {
			s.Support, s.Reason = Refused, r
			d.Doc = "not supported in Samsa: " + r
		}
		m[f[0]] = s
	}
	served := make([]*Def, 0, len(ServerDefs)+len(SecurityDefs))
	for i := range ServerDefs {
		served = append(served, &ServerDefs[i])
	}
	for i := range SecurityDefs {
		served = append(served, &SecurityDefs[i])
	}
	for _, d := range served {
		mode := ModeReadOnly
		if k := m[d.Name]; k != nil {
			mode = k.Mode
		}
		m[d.Name] = &BrokerSetting{Def: d, Support: Served, Mode: mode}
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return m, names
}

// LookupBrokerSetting returns what Samsa does with a broker setting: a Kafka setting, or a
// per-listener one (listener.name.<listener>.<setting>: served for the TLS and SASL settings, else refused). ok is false for a name Kafka
// does not define.
func LookupBrokerSetting(name string) (*BrokerSetting, bool) {
	if s, ok := brokerSettings[name]; ok {
		return s, true
	}
	if s, ok := lookupListenerSetting(name); ok {
		return s, true
	}
	if r := refusal(name); r != "" {
		return &BrokerSetting{Def: &Def{Name: name, Type: TypeString, NoDefault: true}, Support: Refused, Mode: ModePerBroker, Reason: r}, true
	}
	return nil, false
}

// BrokerSettingNames returns every Kafka broker setting name and every served one, sorted.
func BrokerSettingNames() []string { return brokerSettingNames }

// CheckBrokerSetting checks one setting given at start or at run time: an unknown name (with
// the closest known one suggested), a refused setting, or a value of the wrong type are errors.
// kind names the setting in messages ("setting", "broker config").
func CheckBrokerSetting(kind, name, value string) (*BrokerSetting, error) {
	s, ok := LookupBrokerSetting(name)
	if !ok {
		return nil, UnknownError(kind, name)
	}
	if s.Support == Refused {
		return s, fmt.Errorf("%s %q is not supported in Samsa: %s", kind, name, s.Reason)
	}
	if err := s.Def.Validate(value); err != nil {
		return s, err
	}
	return s, nil
}

// UnknownError is the error for a setting name Kafka does not define, suggesting the closest
// known name when one is close.
func UnknownError(kind, name string) error {
	if sug := Suggest(name); sug != "" {
		return fmt.Errorf("unknown %s %q; did you mean %q?", kind, name, sug)
	}
	return fmt.Errorf("unknown %s %q", kind, name)
}

// Suggest returns the known broker setting name closest to name (edit distance), or "" when
// none is close: at most 3 edits, and fewer than a third of the name's length.
func Suggest(name string) string {
	best, bestDist := "", 4
	for _, n := range brokerSettingNames {
		if d := editDistance(name, n, bestDist); d < bestDist && 3*d < len(name) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
