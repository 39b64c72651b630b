package controller

import (
	"slices"
	"sync/atomic"
	"testing"

	"github.com/samsa-io/samsa/internal/metadata"
)

// TestBrokerConnectionLost: a broker whose heartbeat connection closed is fenced at once, and
// its leaderships and ISR memberships move, only when the probe says its process is gone; a
// stale epoch, an alive broker or a broker already fenced change nothing.
func TestBrokerConnectionLost(t *testing.T) {
	var gone atomic.Int32 // the broker the probe reports gone
	cfg := testConfig(t, t.TempDir())
	cfg.BrokerGone = func(b metadata.Broker) bool { return b.ID == gone.Load() }
	c := startController(t, cfg)
	registerBrokers(t, c, 1, 2, 3)
	if res := c.CreateTopics(testCtx(t), []CreateTopic{{Name: "t", NumPartitions: 3, ReplicationFactor: 3}}, false); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	epoch := c.Image().Brokers[2].Epoch

	if c.BrokerConnectionLost(2, epoch) {
		t.Fatal("fenced a broker the probe reports alive")
	}
	gone.Store(2)
	if c.BrokerConnectionLost(2, epoch-1) {
		t.Fatal("fenced on a stale broker epoch")
	}
	if !c.BrokerConnectionLost(2, epoch) {
		t.Fatal("did not fence a broker whose process is gone")
	}
	img := c.Image()
	if !img.Brokers[2].Fenced {
		t.Fatal("broker 2 not fenced in the image")
	}
	top, _ := img.Topic("t")
	for _, p := range top.Partitions {
		if p.Leader == 2 || slices.Contains(p.ISR, 2) {
			t.Errorf("partition %d still has broker 2: leader %d ISR %v", p.Partition, p.Leader, p.ISR)
		}
	}
	if c.BrokerConnectionLost(2, epoch) {
		t.Fatal("fenced a fenced broker again")
	}
}
