package metrics

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestErrorCounts: the error codes of responses are counted by API and Kafka's error name,
// NONE included, for the hot responses read directly (Produce, Fetch) and the others walked.
func TestErrorCounts(t *testing.T) {
	createTopics := kmsg.NewPtrCreateTopicsResponse()
	for _, code := range []int16{0, 36, 36} { // NONE, TOPIC_ALREADY_EXISTS twice
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.ErrorCode = code
		createTopics.Topics = append(createTopics.Topics, rt)
	}
	produce := kmsg.NewPtrProduceResponse()
	pt := kmsg.NewProduceResponseTopic()
	for _, code := range []int16{0, 0, 6} { // NONE twice, NOT_LEADER_OR_FOLLOWER
		pp := kmsg.NewProduceResponseTopicPartition()
		pp.ErrorCode = code
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchResponse()
	fetch.ErrorCode = 70 // FETCH_SESSION_ID_NOT_FOUND, no partitions
	heartbeat := kmsg.NewPtrHeartbeatResponse()
	heartbeat.ErrorCode = 27 // REBALANCE_IN_PROGRESS
	// ApiVersions answers carry their error code beside nested structs without one.
	apiVersions := kmsg.NewPtrApiVersionsResponse()
	apiVersions.ApiKeys = append(apiVersions.ApiKeys, kmsg.NewApiVersionsResponseApiKey())

	for _, tc := range []struct {
		resp kmsg.Response
		want map[string]float64 // error name -> count
	}{
		{createTopics, map[string]float64{"NONE": 1, "TOPIC_ALREADY_EXISTS": 2}},
		{produce, map[string]float64{"NONE": 2, "NOT_LEADER_OR_FOLLOWER": 1}},
		{fetch, map[string]float64{"FETCH_SESSION_ID_NOT_FOUND": 1}},
		{heartbeat, map[string]float64{"REBALANCE_IN_PROGRESS": 1}},
		{apiVersions, map[string]float64{"NONE": 1}},
	} {
		name := kmsg.NameForKey(tc.resp.Key())
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewBroker(reg)
			m.RequestDone(tc.resp.Key(), false, tc.resp, 0)
			got := map[string]float64{} // "family error" -> value, of this API's samples
			fams, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fams {
				for _, s := range f.GetMetric() {
					labels := map[string]string{}
					for _, l := range s.GetLabel() {
						labels[l.GetName()] = l.GetValue()
					}
					// Kafka names a consumer's Fetch FetchConsumer in RequestsPerSec, Fetch in ErrorsPerSec.
					request := labels["request"]
					if (request == name || name == "Fetch" && request == "FetchConsumer") && s.GetCounter().GetValue() > 0 {
						got[f.GetName()+" "+labels["error"]] = s.GetCounter().GetValue()
					}
				}
			}
			want := map[string]float64{"samsa_requests_total ": 1}
			for code, n := range tc.want {
				want["samsa_request_errors_total "+code] = n
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counters %v, want %v", got, want)
			}
		})
	}
	m := NewBroker(prometheus.NewRegistry())
	m.RequestDone(-1, false, nil, 0)
	m.RequestDone(kmsg.MaxKey+1, true, nil, 0)
	m.Throttled(QuotaType(99), 1)
}

// TestEveryResponseWalks: the error codes of every response kmsg knows are counted without a
// panic, each plan built once (a response of one entry per nested slice, codes 0).
func TestEveryResponseWalks(t *testing.T) {
	m := NewBroker(prometheus.NewRegistry())
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		resp := kmsg.ResponseForKey(key)
		if resp == nil {
			continue
		}
		fill(reflect.ValueOf(resp).Elem(), 3)
		m.RequestDone(key, false, resp, 0)
		m.RequestDone(key, true, resp, 0)
	}
}

// fill appends one zero element to every slice of structs in v, depth levels down.
func fill(v reflect.Value, depth int) {
	if depth == 0 {
		return
	}
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			fill(f, depth-1)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct && f.CanSet():
			f.Set(reflect.Append(f, reflect.Zero(f.Type().Elem())))
			fill(f.Index(0), depth-1)
		}
	}
}
