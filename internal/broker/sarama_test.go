package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/samsa-io/samsa/internal/testcluster"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

func TestSaramaProduceConsume(t *testing.T) {
	n := testcluster.Start(t)
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		t.Run(codec.String(), func(t *testing.T) {
			cfg := saramaConfig()
			cfg.Producer.Compression = codec
			topic := "sarama-" + codec.String()
			adm, err := sarama.NewClusterAdmin([]string{n.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false); err != nil {
				t.Fatal(err)
			}
			prod, err := sarama.NewSyncProducer([]string{n.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			const total = 300
			var msgs []*sarama.ProducerMessage
			for i := 0; i < total; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%5)), Value: sarama.StringEncoder(fmt.Sprintf("%d|v", i))})
			}
			if err := prod.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			cons, err := sarama.NewConsumer([]string{n.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			perKey := map[string][]int{}
			count := 0
			for p := int32(0); p < 3; p++ {
				pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				hw := pc.HighWaterMarkOffset()
				for got := int64(0); got < hw; got++ {
					select {
					case m := <-pc.Messages():
						var i int
						fmt.Sscanf(string(m.Value), "%d|", &i)
						perKey[string(m.Key)] = append(perKey[string(m.Key)], i)
						count++
					case err := <-pc.Errors():
						t.Fatal(err)
					case <-time.After(20 * time.Second):
						t.Fatalf("partition %d: timed out at %d of %d", p, got, hw)
					}
				}
				pc.Close()
			}
			if count != total {
				t.Fatalf("consumed %d, want %d", count, total)
			}
			for k, vs := range perKey {
				for i := 1; i < len(vs); i++ {
					if vs[i] <= vs[i-1] {
						t.Fatalf("key %s out of order: %v", k, vs)
					}
				}
			}
		})
	}
}
