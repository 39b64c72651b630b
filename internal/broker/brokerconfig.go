package broker

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/config"
)

// Broker resources of the config APIs. Every Kafka broker setting is known by name (config.
// LookupBrokerSetting); what may change at run time follows Kafka's update modes, narrowed
// where Samsa serves a setting but reads it only at start.

// cleanerAtRunTime are the log cleaner settings Samsa follows at run time (the server
// restarts the cleaner with them, as Kafka's LogCleaner.reconfigure).
var cleanerAtRunTime = []string{"log.cleaner.threads", "log.cleaner.dedupe.buffer.size",
	"log.cleaner.backoff.ms", "log.cleaner.io.max.bytes.per.second"}

// throttlesAtRunTime are the replication throttle rates (KIP-73), which the replica manager
// reads from every image.
var throttlesAtRunTime = []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate"}

// servedAtRunTime reports whether Samsa follows run-time changes of a served broker setting:
// it does for the broker-wide defaults of topic configs (Kafka's topic config synonyms), for
// the log cleaner's settings Kafka reconfigures, for the connection limits and for the
// replication throttle rates.
func servedAtRunTime(name string) bool {
	if slices.Contains(cleanerAtRunTime, name) || slices.Contains(connLimitsAtRunTime, name) ||
		slices.Contains(throttlesAtRunTime, name) {
		return true
	}
	for _, d := range config.TopicDefs {
		if d.Synonym == name {
			return true
		}
	}
	return false
}

// brokerConfigDynamic reports whether a broker setting may be changed with AlterConfigs:
// a setting Samsa serves when it follows changes, one it accepts with no effect when Kafka
// lets it change, a refused one never.
func brokerConfigDynamic(s *config.BrokerSetting) bool {
	switch s.Support {
	case config.Served:
		return s.Dynamic() && servedAtRunTime(s.Def.Name)
	case config.NoEffect:
		return s.Dynamic()
	}
	return false
}

// scalaSet formats names as Kafka's messages do (a Scala Set).
func scalaSet(names []string) string { return "Set(" + strings.Join(names, ", ") + ")" }

// checkBrokerChanges validates a change of a broker resource's configs (resourceName "" is
// the cluster-wide default) as Kafka does: unknown, refused or mistyped settings are
// INVALID_CONFIG; read-only ones INVALID_REQUEST with Kafka's message, and so are those Samsa
// serves but reads only at start. (Kafka's per-broker settings that cannot be set cluster-wide
// are all refused or read only at start in Samsa, so that check of Kafka's has no case here.)
func (b *Broker) checkBrokerChanges(resourceName string, set map[string]string, del []string) error {
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	var readOnly, notAtRunTime []string
	for _, k := range names {
		s, err := config.CheckBrokerSetting("broker config", k, set[k])
		if err != nil {
			return kerrMsg(kerr.InvalidConfig, err.Error())
		}
		switch {
		case !s.Dynamic():
			readOnly = append(readOnly, k)
		case !brokerConfigDynamic(s):
			notAtRunTime = append(notAtRunTime, k)
		}
	}
	for _, k := range del {
		if _, ok := config.LookupBrokerSetting(k); !ok {
			return kerrMsg(kerr.InvalidConfig, config.UnknownError("broker config", k).Error())
		}
	}
	switch {
	case len(readOnly) > 0:
		return kerrMsg(kerr.InvalidRequest, "Cannot update these configs dynamically: "+scalaSet(readOnly))
	case len(notAtRunTime) > 0:
		return kerrMsg(kerr.InvalidRequest, "Samsa does not support updating these configs dynamically yet (set them in server.properties): "+scalaSet(notAtRunTime))
	}
	if err := checkConnLimitChanges(set); err != nil {
		return err
	}
	if v, ok := set["log.cleaner.threads"]; ok {
		if err := checkCleanerThreads(v, b.replicas.CleanerConfig().Threads); err != nil {
			return err
		}
	}
	for _, k := range names {
		if s, _ := config.LookupBrokerSetting(k); s.Support == config.NoEffect {
			b.log.Warn("broker config is not supported yet and has no effect", "config", k, "broker", resourceName)
		}
	}
	return nil
}

// checkCleanerThreads is Kafka's check of a new log.cleaner.threads (LogCleaner.
// validateReconfiguration): at least 1, and from half to double the threads in force.
func checkCleanerThreads(value string, current int) error {
	n, err := strconv.Atoi(value)
	switch {
	case err != nil:
		return kerrMsg(kerr.InvalidConfig, "Invalid value "+value+" for configuration log.cleaner.threads: Not a number of type INT")
	case n < 1:
		return kerrMsg(kerr.InvalidConfig, "Log cleaner threads should be at least 1")
	case n < current/2:
		return kerrMsg(kerr.InvalidConfig, "Log cleaner threads cannot be reduced to less than half the current value "+strconv.Itoa(current))
	case n > current*2:
		return kerrMsg(kerr.InvalidConfig, "Log cleaner threads cannot be increased to more than double the current value "+strconv.Itoa(current))
	}
	return nil
}
