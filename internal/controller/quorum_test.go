package controller

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// freeAddrs returns n loopback addresses whose ports were free a moment ago (the voters'
// addresses must be known before any of them listens).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// quorum is n voters started together in one process.
type quorum struct {
	t     *testing.T
	cfgs  []Config
	mu    sync.Mutex
	ctrls []*Controller
}

func startQuorum(t *testing.T, n int, clusterID string) *quorum {
	t.Helper()
	addrs := freeAddrs(t, n)
	var voters []Voter
	for i, a := range addrs {
		voters = append(voters, Voter{ID: int32(i + 1), Addr: a})
	}
	q := &quorum{t: t, ctrls: make([]*Controller, n)}
	base := t.TempDir()
	for i := range n {
		cfg := testConfig(t, filepath.Join(base, strconv.Itoa(i+1)))
		cfg.NodeID = int32(i + 1)
		cfg.BindAddr = addrs[i]
		cfg.Bootstrap = false
		cfg.Voters = voters
		cfg.ClusterID = clusterID
		q.cfgs = append(q.cfgs, cfg)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = q.start(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("voter %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for i := range n {
			q.stop(i)
		}
	})
	return q
}

func (q *quorum) start(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Start(ctx, q.cfgs[i])
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.ctrls[i] = c
	q.mu.Unlock()
	return nil
}

func (q *quorum) stop(i int) {
	q.mu.Lock()
	c := q.ctrls[i]
	q.ctrls[i] = nil
	q.mu.Unlock()
	if c != nil {
		if err := c.Close(); err != nil {
			q.t.Errorf("closing voter %d: %v", i+1, err)
		}
	}
}

// leader waits until one running voter is the leader and returns its index.
func (q *quorum) leader() int {
	q.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		q.mu.Lock()
		for i, c := range q.ctrls {
			if c != nil && c.IsLeader() {
				q.mu.Unlock()
				return i
			}
		}
		q.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	q.t.Fatal("no leader")
	return -1
}

// waitTopic waits until every running voter's image has the topic.
func (q *quorum) waitTopic(name string) {
	q.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		all := true
		q.mu.Lock()
		for _, c := range q.ctrls {
			if c != nil {
				if _, ok := c.Image().Topic(name); !ok {
					all = false
				}
			}
		}
		q.mu.Unlock()
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.t.Fatalf("topic %s not on every voter", name)
}

// TestThreeVoterQuorum: three voters bootstrap the same configuration and agree on the
// cluster id they were formatted with; a change made on the leader reaches every voter; a
// follower refuses operations with NOT_CONTROLLER; when the leader stops, another is elected
// and takes changes; the stopped voter restarts and catches up.
func TestThreeVoterQuorum(t *testing.T) {
	const clusterID = "MkU3OEVBNTcwNTJENDM2Qk"
	q := startQuorum(t, 3, clusterID)
	l := q.leader()
	for i, c := range q.ctrls {
		if got := c.Image().ClusterID; got != clusterID {
			t.Errorf("voter %d: cluster id %q, want %q", i+1, got, clusterID)
		}
		id, addr, ok := c.Leader()
		if !ok || id != int32(l+1) || addr != q.cfgs[l].BindAddr {
			t.Errorf("voter %d: leader %d %s %v, want %d %s", i+1, id, addr, ok, l+1, q.cfgs[l].BindAddr)
		}
	}
	registerBrokers(t, q.ctrls[l], 1, 2, 3)
	res := q.ctrls[l].CreateTopics(testCtx(t), []CreateTopic{{Name: "a", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	q.waitTopic("a")
	f := (l + 1) % 3
	res = q.ctrls[f].CreateTopics(testCtx(t), []CreateTopic{{Name: "b", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if ErrorCode(res[0].Err) != 41 { // NOT_CONTROLLER
		t.Errorf("CreateTopics on a follower: %v, want NOT_CONTROLLER", res[0].Err)
	}

	q.stop(l)
	l2 := q.leader()
	if l2 == l {
		t.Fatal("the stopped voter is still the leader")
	}
	res = q.ctrls[l2].CreateTopics(testCtx(t), []CreateTopic{{Name: "c", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if res[0].Err != nil {
		t.Fatalf("CreateTopics on the new leader: %v", res[0].Err)
	}
	if err := q.start(l); err != nil {
		t.Fatalf("restarting voter %d: %v", l+1, err)
	}
	q.waitTopic("c")
}

// TestQuorumRefusesAnotherCluster: a voter formatted with another cluster id fails to start
// (its Raft connections are refused and the quorum's id is not its own).
func TestQuorumRefusesAnotherCluster(t *testing.T) {
	q := startQuorum(t, 3, "MkU3OEVBNTcwNTJENDM2Qk")
	l := q.leader()
	f := (l + 1) % 3
	q.stop(f)
	q.cfgs[f].ClusterID = "AAAAAAAAAAAAAAAAAAAAAA"
	q.cfgs[f].Dir = filepath.Join(t.TempDir(), "fresh")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := Start(ctx, q.cfgs[f])
	if err == nil {
		c.Close()
		t.Fatal("a voter of another cluster started")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("start refused: %v", err)
	}
	if _, ok := q.ctrls[l].Image().Topic("x"); ok {
		t.Fatal("unexpected topic")
	}
}
