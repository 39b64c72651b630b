package campaign

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topic      = "campaign"
	partitions = 3
	// produceInterval paces each producer (about 100 records a second each).
	produceInterval = 10 * time.Millisecond
	// pauseFor is how long a SIGSTOPped follower or an isolated node stays cut off: longer
	// than broker.session.timeout.ms (9 s), so the controller fences it.
	pauseFor = 12 * time.Second
	// healTimeout bounds each wait for the cluster to recover (nodes serving, leaders,
	// acknowledgements on every partition); passing it fails the campaign and ends the faults.
	healTimeout = time.Minute
	// isrTimeout bounds the wait for every ISR to be full again after a fault; passing it is
	// only logged (writes go on while the ISR has min.insync.replicas members).
	isrTimeout = 30 * time.Second
)

// campaignSettings reads SAMSA_CAMPAIGN: empty for the short run (90 s of faults), "long" for
// 15 minutes, or a Go duration; and SAMSA_CAMPAIGN_RF (default 3).
func campaignSettings(t *testing.T) (faults time.Duration, rf int) {
	faults, rf = 90*time.Second, 3
	switch v := os.Getenv("SAMSA_CAMPAIGN"); v {
	case "":
	case "long":
		faults = 15 * time.Minute
	default:
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SAMSA_CAMPAIGN=%q: want \"long\" or a duration: %v", v, err)
		}
		faults = d
	}
	if v := os.Getenv("SAMSA_CAMPAIGN_RF"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3 {
			t.Fatalf("SAMSA_CAMPAIGN_RF=%q: want 1, 2 or 3", v)
		}
		rf = n
	}
	return faults, rf
}

// TestCampaignShort runs the fault campaign against three real nodes and fails on any
// acknowledged record lost, duplicated, misplaced or reordered, and on any read of data the
// final log does not hold. SAMSA_CAMPAIGN=long (or a duration) runs the faults longer;
// SAMSA_CAMPAIGN_RF=1 checks the harness itself on unreplicated partitions; SAMSA_CAMPAIGN_KEEP=1
// keeps the nodes' data and logs of a run that passed.
func TestCampaignShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault campaign runs real processes for minutes; not in -short")
	}
	faults, rf := campaignSettings(t)
	minISR := min(2, rf)
	c := startCluster(t, 3,
		fmt.Sprintf("min.insync.replicas=%d", minISR),
		"unclean.leader.election.enable=false",
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	for _, name := range []string{topic, eosOutput} {
		_, err := kadm.NewClient(c.admin).CreateTopic(ctx, partitions, int16(rf), map[string]*string{
			"min.insync.replicas":            kadm.StringPtr(strconv.Itoa(minISR)),
			"unclean.leader.election.enable": kadm.StringPtr("false"),
		}, name)
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
	}
	cancel()
	n := &nemesis{t: t, c: c, rf: rf, start: time.Now()}
	n.waitHealthy("start")

	rec := newRecorder()
	var clients []client
	clients = append(clients, consumer(t, c.seeds(), topic, partitions, "consumer", kgo.ReadUncommitted(), rec))
	for _, id := range []string{"kgo1", "kgo2"} {
		clients = append(clients, kgoProducer(t, c.seeds(), topic, partitions, id, produceInterval, rec))
	}
	if py, err := venvPython(); err != nil {
		t.Logf("no librdkafka producer: %v", err)
	} else if cl, err := pyProducer(t, py, c.seeds(), topic, partitions, "rdk1", produceInterval, rec,
		filepath.Join(c.base, "producer-rdk1.log")); err != nil {
		t.Logf("no librdkafka producer: %v", err)
	} else {
		clients = append(clients, cl)
	}
	// Exactly once: the copier reads the campaign topic and copies it to eosOutput in
	// transactions, a read_committed reader watches the output.
	eosRec := newRecorder()
	cp := startCopier(t, c.seeds(), topic)
	eosReader := consumer(t, c.seeds(), eosOutput, partitions, "eos-reader", kgo.ReadCommitted(), eosRec)
	stopped, eosStopped := false, false
	stopClients := func() {
		if stopped {
			return
		}
		stopped = true
		// Producers first (they flush, concurrently), the consumer last.
		var wg sync.WaitGroup
		for _, cl := range clients[1:] {
			wg.Add(1)
			go func() { defer wg.Done(); cl.stop() }()
		}
		wg.Wait()
		clients[0].stop()
	}
	stopEOS := func() {
		if !eosStopped {
			eosStopped = true
			cp.stop()
			eosReader.stop()
		}
	}
	t.Cleanup(stopEOS)
	t.Cleanup(stopClients)
	n.rec = rec
	n.waitProgress("start", time.Now())

	t.Logf("faults for %s, RF=%d, min.insync.replicas=%d, broker.session.timeout.ms default (9000)", faults, rf, minISR)
	schedule := []struct {
		name string
		run  func()
	}{
		{"kill a partition leader", n.killLeader},
		{"pause a follower", n.pauseFollower},
		{"kill the active controller", n.killController},
		{"isolate a partition leader", n.isolateLeader},
		{"rolling restart (SIGTERM)", n.rollingRestart},
		{"kill the copier's transaction coordinator", n.killTxnCoordinator},
	}
	deadline := time.Now().Add(faults)
	for i := 0; i < len(schedule) || time.Now().Before(deadline); i++ {
		f := schedule[i%len(schedule)]
		n.logf("fault %d: %s", i+1, f.name)
		f.run()
		if t.Failed() {
			break
		}
		healed := time.Now()
		n.waitHealthy(f.name)
		if !n.waitProgress(f.name, healed) {
			n.logf("the cluster does not recover: no more faults")
			break
		}
	}

	// Quiet period: healthy, every partition taking writes, then the producers flush.
	if !t.Failed() {
		n.waitHealthy("quiet period")
		n.waitProgress("quiet period", time.Now())
	}
	stopClients()

	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	final, err := readAll(ctx, c.seeds(), topic)
	if err != nil {
		t.Fatal(err)
	}
	n.checkEOS(ctx, cp, stopEOS, eosRec, final)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	report := Check(rec.acks, rec.reads, final)
	shown := map[string]int{}
	for _, a := range report.Anomalies {
		if shown[a.Kind]++; shown[a.Kind] <= 10 {
			t.Logf("anomaly: %v", a)
		}
	}
	for kind, k := range shown {
		if k > 10 {
			t.Logf("... and %d more %s", k-10, kind)
		}
	}
	var sent []string
	for id, s := range rec.sent {
		sent = append(sent, fmt.Sprintf("%s sent %d failed %d", id, s, rec.failed[id]))
	}
	slices.Sort(sent)
	t.Logf("producers: %s; reads during the campaign: %d", strings.Join(sent, ", "), len(rec.reads))
	t.Logf("result: %v", report)
	fo := FailoverTimes(n.kills, rec.acks)
	for _, f := range fo {
		if f.Missing {
			t.Logf("failover: partition %d after killing node %d at %s: no acknowledgement since", f.Partition, f.Node, n.since(f.At))
		} else {
			t.Logf("failover: partition %d after killing node %d at %s: %s", f.Partition, f.Node, n.since(f.At), f.Took.Round(time.Millisecond))
		}
	}
	lo, med, hi, missing := Summary(fo)
	t.Logf("failover times over %d leader kills: min %s, median %s, max %s, without acknowledgement %d",
		len(fo), lo.Round(time.Millisecond), med.Round(time.Millisecond), hi.Round(time.Millisecond), missing)
	if report.Failed() {
		t.Errorf("the campaign found anomalies: %v", report)
		if rf > 1 {
			t.Log("(if this branch has no partition replication yet, followers hold no data and a new leader " +
				"starts from its own, possibly empty, log: acknowledged records are lost by design until replication lands)")
		}
	}
	if report.Acked == 0 {
		t.Error("no record was acknowledged")
	}
}

// nemesis runs the faults against the cluster and records the leader kills.
type nemesis struct {
	t     *testing.T
	c     *cluster
	rf    int
	rec   *recorder
	start time.Time
	kills []Kill
	next  int // rotates the partition each fault picks
}

func (n *nemesis) since(at time.Time) string {
	return "+" + at.Sub(n.start).Round(time.Millisecond).String()
}

func (n *nemesis) logf(format string, args ...any) {
	n.t.Helper()
	n.t.Logf("%s %s", n.since(time.Now()), fmt.Sprintf(format, args...))
}

// pick returns the next partition, its leader and its ISR, waiting (bounded) for a leader.
func (n *nemesis) pick() (int32, int32, []int32) {
	n.t.Helper()
	p := int32(n.next % partitions)
	n.next++
	deadline := time.Now().Add(healTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		leaders, isr, err := n.c.leaders(ctx, topic)
		cancel()
		if err == nil && leaders[p] >= 0 {
			return p, leaders[p], isr[p]
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("partition %d has no leader (%v)", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killed records a SIGKILL of node at: a failover for every partition it led.
func (n *nemesis) killed(node int32, at time.Time, leaders map[int32]int32) {
	for p, l := range leaders {
		if l == node {
			n.kills = append(n.kills, Kill{Partition: p, Node: node, At: at})
		}
	}
}

// leadersNow returns the partition leaders (empty on error).
func (n *nemesis) leadersNow() map[int32]int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leaders, _, _ := n.c.leaders(ctx, topic)
	return leaders
}

// killTxnCoordinator: SIGKILL the transaction coordinator of the copier's transactional id
// (the leader of its __transaction_state partition), wait for another, restart it.
func (n *nemesis) killTxnCoordinator() {
	coordinator := func() (int32, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := kadm.NewClient(n.c.admin).FindTxnCoordinators(ctx, eosTxnID)
		for _, c := range r {
			if c.Err != nil {
				return -1, c.Err
			}
			return c.NodeID, nil
		}
		return -1, fmt.Errorf("no answer")
	}
	id, err := coordinator()
	if err != nil {
		n.logf("finding the copier's transaction coordinator: %v; killing a partition leader instead", err)
		n.killLeader()
		return
	}
	leaders := n.leadersNow()
	at := time.Now()
	n.c.kill(n.c.node(id))
	n.killed(id, at, leaders)
	n.logf("SIGKILL node %d, transaction coordinator of %s", id, eosTxnID)
	deadline := time.Now().Add(healTimeout)
	for n.rf > 1 {
		if now, err := coordinator(); err == nil && now != id {
			n.logf("transaction coordinator of %s: %d", eosTxnID, now)
			break
		}
		if time.Now().After(deadline) {
			n.t.Errorf("no new transaction coordinator within %s of killing %d", healTimeout, id)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.restart(n.c.node(id))
}

// checkEOS lets the copier catch up with the final input, stops it and its reader, reads the
// output read_committed and runs the exactly-once checker.
func (n *nemesis) checkEOS(ctx context.Context, cp *copier, stop func(), rec *recorder, input map[int32][]Record) {
	t := n.t
	wctx, cancel := context.WithTimeout(ctx, healTimeout)
	err := waitCopied(wctx, n.c.seeds(), topic)
	cancel()
	stop()
	if err != nil {
		t.Errorf("exactly once: %v", err)
		return
	}
	output, err := readCommitted(ctx, n.c.seeds(), eosOutput, partitions)
	if err != nil {
		t.Errorf("exactly once: %v", err)
		return
	}
	txns, count := cp.outcomes()
	rec.mu.Lock()
	report := CheckEOS(input, output, rec.reads, txns)
	reads := len(rec.reads)
	rec.mu.Unlock()
	for i, a := range report.Anomalies {
		if i == 20 {
			t.Logf("... and %d more", len(report.Anomalies)-20)
			break
		}
		t.Logf("exactly-once anomaly: %v", a)
	}
	t.Logf("exactly once: %v; copier transactions committed %d, aborted %d, unknown %d; output reads during the campaign %d",
		report, count[TxnCommitted], count[TxnAborted], count[TxnUnknown], reads)
	if report.Failed() {
		t.Errorf("the exactly-once checker found anomalies: %v", report)
	}
	if report.Output == 0 {
		t.Error("exactly once: the copier wrote nothing")
	}
}

// waitLeaderMoved waits until partition p has a leader other than old (bounded), returning
// false if it did not happen (RF=1: it cannot).
func (n *nemesis) waitLeaderMoved(p, old int32, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leaders, _, err := n.c.leaders(ctx, topic)
		cancel()
		if err == nil && leaders[p] >= 0 && leaders[p] != old {
			n.logf("partition %d: leader %d (was %d)", p, leaders[p], old)
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func (n *nemesis) restart(nd *node) {
	n.c.start(nd)
	n.c.waitServing(nd)
	n.logf("node %d serves again", nd.id)
}

// killLeader: SIGKILL the leader of a partition, wait for a new leader (with RF=1 there is
// none: bounded), restart it.
func (n *nemesis) killLeader() {
	p, leader, _ := n.pick()
	leaders := n.leadersNow()
	at := time.Now()
	n.c.kill(n.c.node(leader))
	n.killed(leader, at, leaders)
	n.logf("SIGKILL node %d, leader of partition %d", leader, p)
	if n.rf > 1 && !n.waitLeaderMoved(p, leader, healTimeout) {
		n.t.Errorf("partition %d: no new leader within %s of killing %d", p, healTimeout, leader)
	}
	n.restart(n.c.node(leader))
}

// pauseFollower: SIGSTOP a follower of a partition (with RF=1 a node that does not lead it),
// SIGCONT it after pauseFor.
func (n *nemesis) pauseFollower() {
	p, leader, isr := n.pick()
	var f int32 = -1
	for _, r := range isr {
		if r != leader {
			f = r
		}
	}
	if f < 0 {
		f = leader%3 + 1
	}
	nd := n.c.node(f)
	n.c.signal(nd, syscall.SIGSTOP)
	n.logf("SIGSTOP node %d, follower of partition %d (leader %d)", f, p, leader)
	time.Sleep(pauseFor)
	n.c.signal(nd, syscall.SIGCONT)
	n.logf("SIGCONT node %d", f)
	n.c.waitServing(nd)
}

// killController: SIGKILL the active controller, wait for another, restart it.
func (n *nemesis) killController() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	id, err := n.c.activeController(ctx)
	cancel()
	if err != nil {
		n.t.Errorf("finding the active controller: %v", err)
		return
	}
	leaders := n.leadersNow()
	at := time.Now()
	n.c.kill(n.c.node(id))
	n.killed(id, at, leaders)
	n.logf("SIGKILL node %d, the active controller", id)
	deadline := time.Now().Add(healTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		now, err := n.c.activeController(ctx)
		cancel()
		if err == nil && now != id {
			n.logf("active controller: %d", now)
			break
		}
		if time.Now().After(deadline) {
			n.t.Errorf("no new active controller within %s of killing %d", healTimeout, id)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.restart(n.c.node(id))
}

// isolateLeader: cut a partition's leader off the network (clients included) for pauseFor,
// then heal.
func (n *nemesis) isolateLeader() {
	p, leader, _ := n.pick()
	at := time.Now()
	n.c.net.Isolate(leader)
	n.logf("isolated node %d, leader of partition %d", leader, p)
	if n.rf > 1 {
		n.waitLeaderMoved(p, leader, pauseFor)
	}
	time.Sleep(time.Until(at.Add(pauseFor)))
	n.c.net.Heal()
	n.logf("healed the network")
	n.c.waitServing(n.c.node(leader))
}

// rollingRestart: SIGTERM each node in turn (controlled shutdown), restart it, wait for health.
func (n *nemesis) rollingRestart() {
	for _, nd := range n.c.nodes {
		start := time.Now()
		n.c.signal(nd, syscall.SIGTERM)
		if !n.c.wait(nd, time.Minute) {
			n.t.Errorf("node %d did not stop within a minute of SIGTERM (SIGQUIT: its goroutines are in %s)", nd.id, nd.logPath)
		}
		n.logf("node %d stopped after SIGTERM in %s", nd.id, time.Since(start).Round(time.Millisecond))
		n.restart(nd)
		n.waitHealthy(fmt.Sprintf("rolling restart of node %d", nd.id))
	}
}

// waitHealthy waits until every node serves, every partition has a leader and (RF>1) a full
// ISR. Partitions without a full ISR after healTimeout are reported, not failed: without
// replication the ISR says nothing.
func (n *nemesis) waitHealthy(after string) {
	n.t.Helper()
	for _, nd := range n.c.nodes {
		n.c.waitServing(nd)
	}
	deadline, isrDeadline := time.Now().Add(healTimeout), time.Now().Add(isrTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leaders, isr, err := n.c.leaders(ctx, topic)
		cancel()
		ok := err == nil && len(leaders) == partitions
		full := ok
		for p := range leaders {
			ok = ok && leaders[p] >= 0
			full = full && len(isr[p]) == n.rf
		}
		if ok && full {
			return
		}
		if ok && time.Now().After(isrDeadline) {
			n.logf("after %s: the ISR is not full after %s: %v", after, isrTimeout, isr)
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("after %s: partitions without a leader after %s: %v (%v)", after, healTimeout, leaders, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitProgress waits until every partition has an acknowledgement after since (bounded; a
// partition that takes no writes fails the campaign: false).
func (n *nemesis) waitProgress(after string, since time.Time) bool {
	n.t.Helper()
	deadline := time.Now().Add(healTimeout)
	for {
		got := map[int32]bool{}
		n.rec.mu.Lock()
		for i := len(n.rec.acks) - 1; i >= 0 && len(got) < partitions; i-- {
			if n.rec.acks[i].At.After(since) {
				got[n.rec.acks[i].Partition] = true
			}
		}
		n.rec.mu.Unlock()
		if len(got) == partitions {
			return true
		}
		if time.Now().After(deadline) {
			n.t.Errorf("after %s: partitions acknowledged since %s: %v of %d", after, n.since(since), got, partitions)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
