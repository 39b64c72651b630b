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

	"github.com/twmb/franz-go/pkg/kadm"
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

func TestGroupMoreConsumersThanPartitions(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "three", 3, nil)
	var ms []*member
	for i := 0; i < 4; i++ {
		ms = append(ms, startMember(t, n, fmt.Sprint("c", i), "g4", "three", memberOpts{}))
	}
	balanced(t, ms, 3, []int{0, 1, 1, 1})
}

func TestGroupsConsumeIndependently(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "shared", 3, nil)
	produceN(t, n, "shared", 30)
	a := startMember(t, n, "a", "ga", "shared", memberOpts{commit: true})
	b := startMember(t, n, "b", "gb", "shared", memberOpts{commit: true})
	for _, m := range []*member{a, b} {
		waitUntil(t, 30*time.Second, m.name+" consumed everything", func() bool { return len(m.processed()) >= 30 })
	}
	adm := newAdmin(t, n)
	for _, g := range []string{"ga", "gb"} {
		waitUntil(t, 30*time.Second, g+" committed everything", func() bool {
			offs, err := adm.FetchOffsets(ctxT(t), g)
			if err != nil {
				return false
			}
			var sum int64
			for _, ps := range offs {
				for _, o := range ps {
					sum += o.At
				}
			}
			return sum == 30
		})
	}
	if len(a.processed()) != 30 || len(b.processed()) != 30 {
		t.Fatalf("processed %d and %d records, want 30 each", len(a.processed()), len(b.processed()))
	}
}

// cutDialer dials through connections it can cut all at once, like a client whose process
// died: its sessions end without a LeaveGroup.
type cutDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, fmt.Errorf("connection refused (test: client killed)")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// TestGroupMemberKilled: a member whose connections die without LeaveGroup loses its
// partitions after its session timeout, and with process-then-commit nothing is lost.
func TestGroupMemberKilled(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "killed", 6, nil)
	d := &cutDialer{}
	a := startMember(t, n, "a", "gk", "killed", memberOpts{commit: true, opts: []kgo.Opt{kgo.Dialer(d.dial)}})
	b := startMember(t, n, "b", "gk", "killed", memberOpts{commit: true})
	balanced(t, []*member{a, b}, 6, []int{3, 3})
	produceN(t, n, "killed", 60) // round robin: both members get some
	waitUntil(t, 30*time.Second, "a processed records", func() bool { return len(a.processed()) > 0 })

	killedAt := time.Now()
	d.kill()
	produceN(t, n, "killed", 60)
	waitUntil(t, 30*time.Second, "b owns every partition", func() bool { return len(b.ownedPartitions()) == 6 })
	t.Logf("b took over %v after a was killed", time.Since(killedAt).Round(100*time.Millisecond))

	waitUntil(t, 30*time.Second, "every record was processed at least once", func() bool {
		seen := map[string]bool{}
		for _, m := range []*member{a, b} {
			for _, r := range m.processed() {
				seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = true
			}
		}
		return len(seen) == 120
	})
}

// TestGroupCooperativeSticky: when a second member joins, the first gives up only the
// partitions that move; the ones it keeps are never revoked.
func TestGroupCooperativeSticky(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "coop", 6, nil)
	coop := memberOpts{opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}}
	a := startMember(t, n, "a", "gc", "coop", coop)
	balanced(t, []*member{a}, 6, []int{6})
	b := startMember(t, n, "b", "gc", "coop", coop)
	balanced(t, []*member{a, b}, 6, []int{3, 3})
	a.mu.Lock()
	revoked, lost := slices.Clone(a.revoked), slices.Clone(a.lost)
	a.mu.Unlock()
	slices.Sort(revoked)
	if len(revoked) != 3 || len(lost) != 0 {
		t.Fatalf("a revoked %v and lost %v, want exactly the 3 partitions that moved", revoked, lost)
	}
	for _, p := range a.ownedPartitions() {
		if slices.Contains(revoked, p) {
			t.Fatalf("a revoked partition %d that it kept", p)
		}
	}
}

// TestGroupStaticMemberRestart: a static member that restarts within its session timeout
// gets its partitions back without a rebalance.
func TestGroupStaticMemberRestart(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "static", 6, nil)
	static := func(id string) memberOpts { return memberOpts{opts: []kgo.Opt{kgo.InstanceID(id)}} }
	a := startMember(t, n, "a", "gs", "static", static("inst-a"))
	balanced(t, []*member{a}, 6, []int{6}) // a leads
	b := startMember(t, n, "b", "gs", "static", static("inst-b"))
	balanced(t, []*member{a, b}, 6, []int{3, 3})
	_, genA := a.cl.GroupMetadata()
	oldB, genB := b.cl.GroupMetadata()
	ownedB := b.ownedPartitions()
	a.mu.Lock()
	revokedBefore := len(a.revoked)
	a.mu.Unlock()

	b.close() // a static member does not leave the group
	b2 := startMember(t, n, "b2", "gs", "static", static("inst-b"))
	waitUntil(t, 30*time.Second, "the restarted member owns its partitions", func() bool {
		return slices.Equal(b2.ownedPartitions(), ownedB)
	})
	newB, genB2 := b2.cl.GroupMetadata()
	_, genA2 := a.cl.GroupMetadata()
	if genB2 != genB || genA2 != genA || newB == oldB {
		t.Fatalf("generations a %d->%d, b %d->%d (member %s->%s): want no rebalance and a new member id", genA, genA2, genB, genB2, oldB, newB)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.revoked) != revokedBefore {
		t.Fatalf("a had partitions revoked during the static restart: %v", a.revoked)
	}
}

// TestGroupCommitsSurviveRestart: committed offsets and the group come back after the
// broker restarts, and a new consumer resumes after the last commit.
func TestGroupCommitsSurviveRestart(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "durable", 3, nil)
	produceN(t, n, "durable", 30)
	a := startMember(t, n, "a", "gd", "durable", memberOpts{commit: true})
	adm := newAdmin(t, n)
	committed := func() int64 {
		offs, err := adm.FetchOffsets(ctxT(t), "gd")
		if err != nil {
			return -1
		}
		var sum int64
		for _, ps := range offs {
			for _, o := range ps {
				sum += o.At
			}
		}
		return sum
	}
	waitUntil(t, 30*time.Second, "30 offsets committed", func() bool { return committed() == 30 })
	a.close()

	n.Restart()
	waitUntil(t, 30*time.Second, "the commits are back after the restart", func() bool { return committed() == 30 })
	resumesAfterCommits(t, n, "gd", "durable", memberOpts{commit: true})
}

// resumesAfterCommits starts a new member of group on topic, whose 3 partitions hold 10
// committed records each, produces 9 more and checks that it reads only those.
func resumesAfterCommits(t *testing.T, n *testcluster.Node, group, topic string, mo memberOpts) {
	t.Helper()
	b := startMember(t, n, "b", group, topic, mo)
	produceN(t, n, topic, 9)
	waitUntil(t, 30*time.Second, "b consumed the new records", func() bool { return len(b.processed()) >= 9 })
	for _, r := range b.processed() {
		if r.Offset < 10 {
			t.Fatalf("b re-consumed committed record %d/%d", r.Partition, r.Offset)
		}
	}
}

// TestDeletedTopicLosesCommittedOffsets: deleting a topic deletes the groups' committed
// offsets of it (as Kafka does), so a topic recreated under the same name starts clean.
func TestDeletedTopicLosesCommittedOffsets(t *testing.T) {
	n := startGroupNode(t)
	createTopic(t, n, "doomed", 2, nil)
	createTopic(t, n, "kept", 1, nil)
	adm := newAdmin(t, n)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "doomed", Partition: 0, At: 5, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "doomed", Partition: 1, At: 7, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "kept", Partition: 0, At: 3, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctxT(t), "gdel", offs); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctxT(t), "doomed"); err != nil {
		t.Fatal(err)
	}
	onlyKept := func() bool {
		got, err := adm.FetchOffsets(ctxT(t), "gdel")
		if err != nil {
			return false
		}
		_, has := got["doomed"]
		k, ok := got.Lookup("kept", 0)
		return !has && ok && k.At == 3
	}
	waitUntil(t, 10*time.Second, "the deleted topic's offsets are gone", onlyKept)
	createTopic(t, n, "doomed", 2, nil)
	got, err := adm.FetchOffsets(ctxT(t), "gdel")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup("doomed", 0); ok && o.At >= 0 {
		t.Fatalf("the recreated topic inherited offset %d", o.At)
	}
	n.Restart()
	waitUntil(t, 30*time.Second, "the offsets are still right after a restart", onlyKept)
}
