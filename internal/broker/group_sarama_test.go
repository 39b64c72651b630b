package broker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaMember is a sarama ConsumerGroup member that records its claims.
type saramaMember struct {
	mu     sync.Mutex
	claims []int32
	seen   int
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = slices.Clone(s.Claims()["sgroup"])
	slices.Sort(m.claims)
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = nil
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.seen++
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) state() ([]int32, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.claims), m.seen
}

func TestSaramaConsumerGroup(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "sgroup", 6, nil)
	produceN(t, n, "sgroup", 60)
	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond

	var members []*saramaMember
	for i := 0; i < 3; i++ {
		cg, err := sarama.NewConsumerGroup([]string{n.Addr()}, "sarama-group", cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := &saramaMember{}
		members = append(members, m)
		consumeWithSarama(t, cg, "sgroup", m)
	}
	var desc string
	waitUntil(t, 60*time.Second, "three sarama members own two partitions each", func() bool {
		owned := map[int32]int{}
		desc = ""
		for i, m := range members {
			claims, _ := m.state()
			if len(claims) != 2 {
				return false
			}
			for _, p := range claims {
				owned[p]++
			}
			desc += fmt.Sprintf("m%d:%v ", i, claims)
		}
		return len(owned) == 6
	})
	t.Logf("assignment: %s", desc)
	waitUntil(t, 30*time.Second, "every record is consumed", func() bool {
		total := 0
		for _, m := range members {
			_, seen := m.state()
			total += seen
		}
		return total >= 60
	})
	adm := newAdmin(t, n)
	waitUntil(t, 30*time.Second, "sarama committed every offset", func() bool {
		offs, err := adm.FetchOffsets(ctxT(t), "sarama-group")
		if err != nil {
			return false
		}
		var sum int64
		for _, ps := range offs {
			for _, o := range ps {
				sum += o.At
			}
		}
		return sum == 60
	})
}

// consumeWithSarama keeps the sarama group member cg consuming topic with handler (Consume
// returns at every rebalance) until the test ends.
func consumeWithSarama(t *testing.T, cg sarama.ConsumerGroup, topic string, handler sarama.ConsumerGroupHandler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, handler); err != nil && ctx.Err() == nil {
				t.Logf("consume: %v", err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cg.Close()
	})
}
