package broker

import (
	"context"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/quota"
)

// TestConnLimitsInterBrokerListenerKeepsRoom: with max.connections reached, a client
// listener's new connection waits while the inter-broker listener's are admitted (Kafka's
// protected listener), and the waiting one is admitted once the total is below the bound.
func TestConnLimitsInterBrokerListenerKeepsRoom(t *testing.T) {
	cfg, err := config.LoadServer(map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":     "INTERNAL",
		"max.connections":                "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimits(cfg, quota.DefaultConfig, quota.Empty{}.ClientQuotas, t.Logf)
	ctx := context.Background()
	if res, _ := l.admit(ctx, "PLAINTEXT", "10.0.0.1"); res != admitted {
		t.Fatalf("first connection: %v", res)
	}
	for i := 0; i < 3; i++ {
		if res, _ := l.admit(ctx, "INTERNAL", "10.0.0.2"); res != admitted {
			t.Fatalf("inter-broker connection %d: %v", i, res)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if res, _ := l.admit(short, "PLAINTEXT", "10.0.0.3"); res != admitClosed {
		t.Fatalf("a client connection beyond max.connections was not held: %v", res)
	}
	done := make(chan admission, 1)
	go func() {
		res, _ := l.admit(ctx, "PLAINTEXT", "10.0.0.3")
		done <- res
	}()
	// The inter-broker connections count towards max.connections too (Kafka's totalCount):
	// the client's waits until the total is below it.
	l.release("PLAINTEXT", "10.0.0.1")
	for i := 0; i < 3; i++ {
		select {
		case res := <-done:
			t.Fatalf("admitted (%v) with %d connections open", res, 3-i)
		default:
		}
		l.release("INTERNAL", "10.0.0.2")
	}
	if res := <-done; res != admitted {
		t.Fatalf("after a release: %v", res)
	}
}
