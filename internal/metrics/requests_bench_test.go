package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkRequestDone is what the metrics add to handling one request: a Produce answer of
// one partition, a Fetch answer of 16, and a Metadata answer walked by reflection.
func BenchmarkRequestDone(b *testing.B) {
	produce := kmsg.NewPtrProduceResponse()
	pt := kmsg.NewProduceResponseTopic()
	pt.Partitions = append(pt.Partitions, kmsg.NewProduceResponseTopicPartition())
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchResponse()
	ft := kmsg.NewFetchResponseTopic()
	for range 16 {
		ft.Partitions = append(ft.Partitions, kmsg.NewFetchResponseTopicPartition())
	}
	fetch.Topics = append(fetch.Topics, ft)
	metadata := kmsg.NewPtrMetadataResponse()
	mt := kmsg.NewMetadataResponseTopic()
	for range 16 {
		mt.Partitions = append(mt.Partitions, kmsg.NewMetadataResponseTopicPartition())
	}
	metadata.Topics = append(metadata.Topics, mt)
	for _, tc := range []struct {
		name string
		resp kmsg.Response
	}{{"Produce1p", produce}, {"Fetch16p", fetch}, {"Metadata16p", metadata}} {
		b.Run(tc.name, func(b *testing.B) {
			m := NewBroker(prometheus.NewRegistry())
			b.ReportAllocs()
			for b.Loop() {
				m.RequestDone(tc.resp.Key(), false, tc.resp, time.Millisecond)
			}
		})
	}
}
