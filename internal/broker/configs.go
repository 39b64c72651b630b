package broker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/metadata"
)

// The config APIs: DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.
func init() {
	register(kmsg.DescribeConfigs.Int16(), 1, 4, handleDescribeConfigs)
	register(kmsg.AlterConfigs.Int16(), 0, 2, handleAlterConfigs)
	register(kmsg.IncrementalAlterConfigs.Int16(), 0, 1, handleIncrementalAlterConfigs)
}

// describedConfig is one config entry as DescribeConfigs reports it.
type describedConfig struct {
	Name        string
	Value       *string
	ReadOnly    bool
	Source      int8
	IsSensitive bool
	Synonyms    []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	Type        config.Type
	Doc         string
}

func strp(s string) *string { return &s }

func wanted(names []string, name string) bool {
	if names == nil {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func synonym(name, value string, source int8) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, strp(value), kmsg.ConfigSource(source)
	return s
}

// describeTopicConfigs lists a topic's configs with values, sources and, if asked, synonyms:
// the topic's own value, the dynamic broker values, the static broker setting, the default.
func (b *Broker) describeTopicConfigs(img *metadata.Image, topicConfigs map[string]string, names []string, synonyms, docs bool) []describedConfig {
	var out []describedConfig
	nodeKey := strconv.Itoa(int(b.cfg.NodeID))
	for _, d := range config.TopicDefs {
		if !wanted(names, d.Name) {
			continue
		}
		v, src := b.topicConfigValue(img, topicConfigs, d.Name)
		dc := describedConfig{Name: d.Name, Value: strp(v), Source: src, Type: d.Type}
		if docs {
			dc.Doc = d.Doc
		}
		if synonyms {
			if tv, ok := topicConfigs[d.Name]; ok {
				dc.Synonyms = append(dc.Synonyms, synonym(d.Name, tv, sourceDynamicTopic))
			}
			if bv, ok := img.BrokerConfig(nodeKey)[d.Synonym]; ok {
				dc.Synonyms = append(dc.Synonyms, synonym(d.Synonym, bv, sourceDynamicBroker))
			}
			if bv, ok := img.BrokerConfig("")[d.Synonym]; ok {
				dc.Synonyms = append(dc.Synonyms, synonym(d.Synonym, bv, sourceDynamicDefaultBroker))
			}
			if td := b.topicDefaults[d.Name]; td.Source != "" {
				dc.Synonyms = append(dc.Synonyms, synonym(td.Source, td.Value, sourceStaticBroker))
			}
			dc.Synonyms = append(dc.Synonyms, synonym(d.Synonym, d.Default, sourceDefault))
		}
		out = append(out, dc)
	}
	return out
}

// describeBrokerConfigs lists a broker's settings (every Kafka broker setting) with values,
// sources and synonyms; the cluster-default resource ("") lists only what is set there.
func (b *Broker) describeBrokerConfigs(img *metadata.Image, resourceName string, names []string, synonyms, docs bool) []describedConfig {
	var out []describedConfig
	nodeKey := strconv.Itoa(int(b.cfg.NodeID))
	for _, name := range config.BrokerSettingNames() {
		if !wanted(names, name) {
			continue
		}
		s, _ := config.LookupBrokerSetting(name)
		d := s.Def
		sensitive := d.Type == config.TypePassword
		dc := describedConfig{Name: d.Name, Type: d.Type, ReadOnly: !brokerConfigDynamic(s), IsSensitive: sensitive}
		if docs {
			dc.Doc = d.Doc
		}
		var syn []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		if resourceName != "" {
			if v, ok := img.BrokerConfig(nodeKey)[d.Name]; ok {
				syn = append(syn, synonym(d.Name, v, sourceDynamicBroker))
			}
		}
		if v, ok := img.BrokerConfig("")[d.Name]; ok {
			syn = append(syn, synonym(d.Name, v, sourceDynamicDefaultBroker))
		}
		if resourceName != "" {
			if v, ok := b.cfg.Explicit[d.Name]; ok {
				syn = append(syn, synonym(d.Name, v, sourceStaticBroker))
			}
		}
		if !d.NoDefault {
			syn = append(syn, synonym(d.Name, d.Default, sourceDefault))
		}
		if len(syn) > 0 {
			dc.Value, dc.Source = syn[0].Value, int8(syn[0].Source)
		} else {
			dc.Source = sourceDefault
		}
		if resourceName == "" && dc.Source != sourceDynamicDefaultBroker {
			continue // the cluster-default resource lists only what is set there
		}
		if sensitive {
			dc.Value = nil
			for i := range syn {
				syn[i].Value = nil
			}
		}
		if synonyms {
			dc.Synonyms = syn
		}
		out = append(out, dc)
	}
	return out
}

func handleDescribeConfigs(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := b.ctrl.Image()
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var configs []describedConfig
		refused := b.configAuthError(req, rr.ResourceType, rr.ResourceName, kmsg.ACLOperationDescribeConfigs)
		switch {
		case refused != nil:
			sr.ErrorCode = refused.Code
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			t, ok := img.Topic(rr.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			configs = b.describeTopicConfigs(img, t.Configs, rr.ConfigNames, r.IncludeSynonyms, r.IncludeDocumentation)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strp("unknown broker " + rr.ResourceName)
				break
			}
			configs = b.describeBrokerConfigs(img, rr.ResourceName, rr.ConfigNames, r.IncludeSynonyms, r.IncludeDocumentation)
		case rr.ResourceType == kmsg.ConfigResourceTypeBrokerLogger:
			// No dynamic loggers: an empty list.
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strp(fmt.Sprintf("unsupported resource type %d", rr.ResourceType))
		}
		for _, c := range configs {
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name, sc.Value, sc.ReadOnly, sc.Source, sc.IsSensitive = c.Name, c.Value, c.ReadOnly, kmsg.ConfigSource(c.Source), c.IsSensitive
			sc.IsDefault = c.Source == sourceDefault
			sc.ConfigSynonyms = c.Synonyms
			sc.ConfigType = kmsg.ConfigType(c.Type)
			if c.Doc != "" {
				sc.Documentation = strp(c.Doc)
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterResource validates and applies one resource's config change.
func (b *Broker) alterResource(req *request, resType kmsg.ConfigResourceType, name string, set map[string]string, del []string, validateOnly bool) error {
	if refused := b.configAuthError(req, resType, name, kmsg.ACLOperationAlterConfigs); refused != nil {
		return refused
	}
	switch resType {
	case kmsg.ConfigResourceTypeTopic:
		for k, v := range set {
			if err := config.ValidateTopicConfig(k, v); err != nil {
				return kerrMsg(kerr.InvalidConfig, err.Error())
			}
		}
		for _, k := range del {
			if config.TopicDef(k) == nil {
				return kerrMsg(kerr.InvalidConfig, "unknown topic config "+k)
			}
		}
		return b.ctrl.AlterConfigs(req.conn.ctx, metadata.ResourceTopic, name, set, del, validateOnly)
	case kmsg.ConfigResourceTypeBroker:
		// A broker's own configs go to that broker (the admin client sends them there); on
		// the controller listener they come forwarded from the broker they name, which
		// checked it.
		if name != "" && name != strconv.Itoa(int(b.cfg.NodeID)) && !req.conn.controllerPort {
			return kerrMsg(kerr.InvalidRequest, "unknown broker "+name)
		}
		if err := b.checkBrokerChanges(name, set, del); err != nil {
			return err
		}
		return b.ctrl.AlterConfigs(req.conn.ctx, metadata.ResourceBroker, name, set, del, validateOnly)
	default:
		return kerrMsg(kerr.InvalidRequest, fmt.Sprintf("unsupported resource type %d", resType))
	}
}

func handleAlterConfigs(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	img := b.ctrl.Image()
	for _, rr := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		// AlterConfigs replaces the whole set: what is not given returns to its default.
		set := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				set[c.Name] = *c.Value
			}
		}
		var existing map[string]string
		if rr.ResourceType == kmsg.ConfigResourceTypeTopic {
			if t, ok := img.Topic(rr.ResourceName); ok {
				existing = t.Configs
			}
		} else {
			existing = img.BrokerConfig(rr.ResourceName)
		}
		var del []string
		for k := range existing {
			if _, ok := set[k]; !ok {
				del = append(del, k)
			}
		}
		err := b.alterResource(req, rr.ResourceType, rr.ResourceName, set, del, r.ValidateOnly)
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		if err == nil {
		}
		resp.Resources = append(resp.Resources, sr)
	}
	b.awaitMetadata(req)
	return resp, nil
}

func handleIncrementalAlterConfigs(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	img := b.ctrl.Image()
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		set, del, err := b.incrementalChanges(img, rr)
		if err == nil {
			err = b.alterResource(req, rr.ResourceType, rr.ResourceName, set, del, r.ValidateOnly)
		}
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		if err == nil {
		}
		resp.Resources = append(resp.Resources, sr)
	}
	b.awaitMetadata(req)
	return resp, nil
}

// incrementalChanges turns SET/DELETE/APPEND/SUBTRACT operations into values to set and keys
// to delete, reading current list values for APPEND and SUBTRACT.
func (b *Broker) incrementalChanges(img *metadata.Image, rr kmsg.IncrementalAlterConfigsRequestResource) (map[string]string, []string, error) {
	set := map[string]string{}
	var del []string
	current := func(name string) string {
		if rr.ResourceType == kmsg.ConfigResourceTypeTopic {
			t, ok := img.Topic(rr.ResourceName)
			if !ok {
				return ""
			}
			v, _ := b.topicConfigValue(img, t.Configs, name)
			return v
		}
		v, _ := b.cfg.Value(name)
		if dv, ok := img.BrokerConfig(rr.ResourceName)[name]; ok {
			v = dv
		}
		return v
	}
	for _, c := range rr.Configs {
		value := ""
		if c.Value != nil {
			value = *c.Value
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			set[c.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			del = append(del, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			list := splitConfigList(current(c.Name))
			for _, item := range splitConfigList(value) {
				i := indexOf(list, item)
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					list = append(list, item)
				} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					list = append(list[:i], list[i+1:]...)
				}
			}
			set[c.Name] = strings.Join(list, ",")
		default:
			return nil, nil, kerrMsg(kerr.InvalidRequest, fmt.Sprintf("unknown config operation %d", c.Op))
		}
	}
	return set, del, nil
}

func splitConfigList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// configAuthError checks op (DESCRIBE_CONFIGS, ALTER_CONFIGS) on a config resource as Kafka
// does: on the topic (TOPIC_AUTHORIZATION_FAILED), on the cluster for a broker or its loggers
// (CLUSTER_AUTHORIZATION_FAILED); nil when allowed.
func (b *Broker) configAuthError(req *request, resType kmsg.ConfigResourceType, name string, op kmsg.ACLOperation) *kerr.Error {
	switch resType {
	case kmsg.ConfigResourceTypeTopic:
		if !b.authorize(req, op, kmsg.ACLResourceTypeTopic, name) {
			return kerr.TopicAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !b.authorizeCluster(req, op) {
			return kerr.ClusterAuthorizationFailed
		}
	}
	return nil
}
