package broker

import (
	"context"
	"net"
	"reflect"
	"sync"
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

// TestHostQuotas: the host names of a quota table's ip entities are resolved in the
// background and their addresses published (polled); a table without them unpublishes them;
// a name looked up within hostCacheTTL is not looked up again; a name that does not resolve
// applies to no address.
func TestHostQuotas(t *testing.T) {
	var mu sync.Mutex
	lookups := map[string]int{}
	h := newHostQuotas(context.Background(), func(string, ...any) {})
	h.lookup = func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		lookups[host]++
		switch host {
		case "db.example":
			return []string{"10.0.0.1", "::ffff:10.0.0.2"}, nil
		case "cache.example":
			return []string{"10.0.0.2"}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	table := func(hosts ...string) *quota.Table {
		tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{{IP: quota.Named("10.9.9.9")}: {quota.ConnectionCreationRate: 1}}}
		for _, host := range hosts {
			tab.Quotas[quota.Entity{IP: quota.Named(host)}] = quota.Values{quota.ConnectionCreationRate: 1}
		}
		return tab
	}
	waitFor := func(addr, host string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); h.hostOf(addr) != host; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is of host %q, want %q", addr, h.hostOf(addr), host)
			}
		}
	}
	h.follow(table("db.example", "cache.example", "gone.invalid"))
	waitFor("10.0.0.1", "db.example")
	waitFor("10.0.0.2", "cache.example") // both resolve to it: the first name in order
	if h.hostOf("10.9.9.9") != "" {
		t.Fatal("an address literal entity was looked up")
	}
	h.follow(table())
	waitFor("10.0.0.1", "")
	h.follow(table("db.example"))
	waitFor("10.0.0.1", "db.example")
	waitFor("10.0.0.2", "db.example")
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"db.example": 1, "cache.example": 1, "gone.invalid": 1}; !reflect.DeepEqual(lookups, want) {
		t.Fatalf("lookups %v, want %v (cached)", lookups, want)
	}
}
