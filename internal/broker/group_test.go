package broker_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// startGroupNode starts a node whose new groups rebalance at once.
func startGroupNode(t *testing.T) *testcluster.Node {
	return testcluster.Start(t, "group.initial.rebalance.delay.ms=0")
}

// waitUntil polls cond every 20ms until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// member is one kgo group consumer with what it owns, what it was asked to revoke and the
// records it processed.
type member struct {
	name string
	cl   *kgo.Client
	mu   sync.Mutex
	// owned is the partitions currently assigned (one topic per test).
	owned   map[int32]bool
	revoked []int32
	lost    []int32
	records []*kgo.Record
	stop    context.CancelFunc
	done    chan struct{}
}

func (m *member) ownedPartitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *member) processed() []*kgo.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records)
}

type memberOpts struct {
	opts []kgo.Opt
	// commit processes then commits each fetch synchronously (at-least-once); otherwise
	// kgo autocommits.
	commit bool
}

// groupOpts are the settings every test member uses: short session and rebalance timeouts
// so failures are detected quickly, frequent heartbeats.
func groupOpts(group, topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(300 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
}

// startMember starts a group consumer that polls until stopped.
func startMember(t *testing.T, n *testcluster.Node, name, group, topic string, mo memberOpts) *member {
	t.Helper()
	m := &member{name: name, owned: map[int32]bool{}, done: make(chan struct{})}
	update := func(ps map[string][]int32, assigned bool, into *[]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, parts := range ps {
			for _, p := range parts {
				if assigned {
					m.owned[p] = true
				} else {
					delete(m.owned, p)
					*into = append(*into, p)
				}
			}
		}
	}
	opts := append(groupOpts(group, topic),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update(ps, true, nil) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update(ps, false, &m.revoked) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update(ps, false, &m.lost) }),
	)
	if mo.commit {
		opts = append(opts, kgo.DisableAutoCommit())
	}
	opts = append(opts, mo.opts...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			recs := fs.Records()
			m.mu.Lock()
			m.records = append(m.records, recs...)
			m.mu.Unlock()
			if mo.commit && len(recs) > 0 {
				cl.CommitRecords(ctx, recs...)
			}
		}
	}()
	t.Cleanup(func() { m.close() })
	return m
}

// close stops polling and closes the client (leaving the group).
func (m *member) close() {
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.done
	m.cl.Close()
	m.stop = nil
}

// balanced waits until the members own every partition in [0, partitions) exactly once,
// want[i] partitions each.
func balanced(t *testing.T, members []*member, partitions int, want []int) {
	t.Helper()
	var last string
	waitUntil(t, 45*time.Second, "the partitions are balanced", func() bool {
		seen := map[int32]int{}
		var counts []int
		last = ""
		for _, m := range members {
			ps := m.ownedPartitions()
			counts = append(counts, len(ps))
			for _, p := range ps {
				seen[p]++
			}
			last += fmt.Sprintf("%s:%v ", m.name, ps)
		}
		if len(seen) != partitions {
			return false
		}
		for _, c := range seen {
			if c != 1 {
				return false
			}
		}
		sort.Ints(counts)
		return slices.Equal(counts, want)
	})
	t.Logf("assignment: %s", last)
}

func produceN(t *testing.T, n *testcluster.Node, topic string, count int) {
	t.Helper()
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < count; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestGroupThreeConsumersSixPartitions(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "six", 6, nil)
	var ms []*member
	for i := 0; i < 3; i++ {
		ms = append(ms, startMember(t, n, fmt.Sprint("c", i), "g3", "six", memberOpts{}))
	}
	balanced(t, ms, 6, []int{2, 2, 2})
	produceN(t, n, "six", 60)
	waitUntil(t, 30*time.Second, "every record is consumed", func() bool {
		total := 0
		for _, m := range ms {
			total += len(m.processed())
		}
		return total >= 60
	})
}

var _ = net.Dial
