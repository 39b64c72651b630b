package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// protocol is one way of running the group.
type protocol struct {
	Name   string `json:"protocol"`
	Client string `json:"client_options"`
	opts   func(fast bool) []kgo.Opt
	kip848 bool
	// joiner, if set, are the options of the member that joins (opts are the existing
	// members'): a mixed group.
	joiner func(fast bool) []kgo.Opt
}

// kip848Opts are the options of a KIP-848 member. Its heartbeat interval is the broker's
// (group.consumer.heartbeat.interval.ms), sent in every heartbeat response.
func kip848Opts(bool) []kgo.Opt {
	return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}
}

var protocols = []protocol{
	{
		Name:   "classic-eager",
		Client: "kgo.Balancers(kgo.RangeBalancer())",
		opts: func(fast bool) []kgo.Opt {
			return classic(fast, kgo.Balancers(kgo.RangeBalancer()))
		},
	},
	{
		Name:   "classic-cooperative",
		Client: "kgo.Balancers(kgo.CooperativeStickyBalancer())",
		opts: func(fast bool) []kgo.Opt {
			return classic(fast, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		},
	},
	{
		Name:   "kip848",
		Client: "kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())",
		opts:   kip848Opts,
		kip848: true,
	},
	{
		// A KIP-848 member joins a classic group: the online upgrade to a mixed group.
		Name:   "upgrade",
		Client: "existing: kgo.Balancers(kgo.CooperativeStickyBalancer()); joining: kgo.ServerSideBalancer()",
		opts: func(fast bool) []kgo.Opt {
			return classic(fast, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		},
		joiner: kip848Opts,
	},
}

const fastHeartbeat = 500 * time.Millisecond

// classic are the options of a classic-protocol member: kgo's defaults (heartbeat 3s,
// session 45s, rebalance 60s) unless fast.
func classic(fast bool, extra ...kgo.Opt) []kgo.Opt {
	if fast {
		extra = append(extra, kgo.HeartbeatInterval(fastHeartbeat))
	}
	return extra
}

// roundResult is one measured join.
type roundResult struct {
	Round int `json:"round"`
	// JoinToAllConsumingMs: from just before the 4th member's kgo.NewClient until every member
	// received a record from a partition it owns in the final (balanced) assignment, after
	// its last assignment change.
	JoinToAllConsumingMs float64 `json:"join_to_all_consuming_ms"`
	// NewMemberConsumingMs: the same, for the new member alone.
	NewMemberConsumingMs float64 `json:"new_member_consuming_ms"`
	// FirstChangeMs: until the first assignment change of an existing member (how long
	// the existing members took to notice the join).
	FirstChangeMs float64 `json:"first_change_ms"`
	// StopTheWorldMs: total time during which at least one existing member owned no
	// partition.
	StopTheWorldMs float64 `json:"stop_the_world_ms"`
	// MaxPartitionGapMs: the longest time one partition had no owner.
	MaxPartitionGapMs float64 `json:"max_partition_gap_ms"`
	// StableSetupMs: how long the 3 first members took to be stable and consuming (includes
	// the new group's group.initial.rebalance.delay.ms and the quiet period).
	StableSetupMs float64 `json:"stable_setup_ms"`
	// AssignmentEvents: partition assignment changes seen by the hooks after the join.
	AssignmentEvents int `json:"assignment_events"`
	// ClientHeartbeatMs: the heartbeat interval of the members' kgo clients (classic).
	ClientHeartbeatMs float64 `json:"client_heartbeat_ms,omitempty"`
	Error             string  `json:"error,omitempty"`
}

// roundConfig is what a round needs.
type roundConfig struct {
	brokers    []string
	topic      string
	partitions int
	existing   int // members before the join
	fast       bool
	quiet      time.Duration // no assignment change for this long before the join
	jitter     time.Duration // then wait a random time in [0, jitter) before the join
	confirm    time.Duration // the final assignment must hold this long
	timeout    time.Duration // per phase
	verbose    bool          // print the assignment events of each join
}

// runRound measures one join. The group is new for every round.
func runRound(ctx context.Context, rc roundConfig, p protocol, round int) (res roundResult) {
	res.Round = round
	group := fmt.Sprintf("rebalance-%s-%d-%d", p.Name, round, time.Now().UnixNano())
	var members []*member
	defer func() {
		if !closeMembers(members, 30*time.Second) && res.Error == "" {
			res.Error = "a member did not close within 30s"
		}
	}()
	fail := func(format string, args ...any) roundResult {
		res.Error = fmt.Sprintf(format, args...)
		res.Error += describeMembers(members)
		return res
	}

	// Phase 1: the existing members join a new group and become stable and consuming.
	setupStart := time.Now()
	for i := 0; i < rc.existing; i++ {
		m, err := startMember(i, rc.brokers, group, rc.topic, p.opts(rc.fast))
		if err != nil {
			return fail("starting member %d: %v", i, err)
		}
		members = append(members, m)
		if hb, ok := m.cl.OptValue(kgo.HeartbeatInterval).(time.Duration); ok && !p.kip848 {
			res.ClientHeartbeatMs = ms(hb)
		}
	}
	err := waitFor(ctx, rc.timeout, func() bool {
		ok, last := settled(members, rc.partitions)
		return ok && time.Since(last) >= rc.quiet
	})
	if err != nil {
		return fail("the %d first members were not stable and consuming: %v", rc.existing, err)
	}
	res.StableSetupMs = ms(time.Since(setupStart))
	// Members that joined together heartbeat in phase, and the wait above ends at a fixed
	// point of that phase; join at a random point of the heartbeat cycle instead, as a new
	// member would.
	if rc.jitter > 0 && !sleepCtx(ctx, rand.N(rc.jitter)) {
		return fail("%v", ctx.Err())
	}

	// Phase 2: a new member joins.
	t0 := time.Now()
	initial := make([]int, len(members))
	for i, m := range members {
		m.mark(t0)
		initial[i] = len(m.state().owned)
	}
	joinOpts := p.opts
	if p.joiner != nil {
		joinOpts = p.joiner
	}
	nm, err := startMember(len(members), rc.brokers, group, rc.topic, joinOpts(rc.fast))
	if err != nil {
		return fail("starting the new member: %v", err)
	}
	t0 = nm.started // NewClient is the start of the measurement
	members = append(members, nm)

	var allConsuming time.Time
	err = waitFor(ctx, rc.timeout, func() bool {
		ok, _ := settled(members, rc.partitions)
		if !ok {
			return false
		}
		// Balanced and every member consuming: the final assignment must now hold for
		// `confirm`, else a later change restarts the wait.
		before := totalEvents(members)
		at := time.Time{}
		for _, m := range members {
			if c := m.state().consumingAt; c.After(at) {
				at = c
			}
		}
		if !sleepCtx(ctx, rc.confirm) {
			return false
		}
		if totalEvents(members) != before {
			return false
		}
		allConsuming = at
		return true
	})
	if err != nil {
		return fail("after the join, the %d members were not all consuming a balanced assignment: %v", len(members), err)
	}
	end := allConsuming
	res.JoinToAllConsumingMs = ms(allConsuming.Sub(t0))
	res.NewMemberConsumingMs = ms(nm.state().consumingAt.Sub(t0))

	var empties []interval
	var all []event
	first := time.Time{}
	for i, m := range members {
		evs := m.eventsCopy()
		var after []event
		for _, e := range evs {
			if !e.at.Before(t0) && !e.at.After(end) {
				after = append(after, e)
			}
		}
		all = append(all, after...)
		if i < len(initial) {
			empties = append(empties, emptyIntervals(initial[i], after, t0, end)...)
			if len(after) > 0 && (first.IsZero() || after[0].at.Before(first)) {
				first = after[0].at
			}
		}
	}
	res.AssignmentEvents = len(all)
	if rc.verbose {
		slices.SortStableFunc(all, func(a, b event) int { return a.at.Compare(b.at) })
		for _, e := range all {
			what := "revoked"
			if e.assigned {
				what = "assigned"
			}
			fmt.Fprintf(os.Stderr, "rebalance:   +%8.3fs member %d %s partition %d\n", e.at.Sub(t0).Seconds(), e.member, what, e.part)
		}
		for _, m := range members {
			s := m.state()
			fmt.Fprintf(os.Stderr, "rebalance:   member %d owns %v, consuming since +%.3fs (last change +%.3fs)\n", m.idx, s.owned, s.consumingAt.Sub(t0).Seconds(), s.changeAt.Sub(t0).Seconds())
		}
	}
	res.StopTheWorldMs = ms(unionLength(empties))
	res.MaxPartitionGapMs = ms(maxPartitionGap(rc.partitions, all, t0, end))
	if !first.IsZero() {
		res.FirstChangeMs = ms(first.Sub(t0))
	}
	return res
}

// settled reports whether the members own every partition exactly once, evenly, and each
// has received a record from an owned partition since its last assignment change; last is
// the latest change.
func settled(members []*member, partitions int) (ok bool, last time.Time) {
	seen := make([]bool, partitions)
	lo, hi := partitions+1, -1
	ok = true
	for _, m := range members {
		s := m.state()
		if s.changeAt.After(last) {
			last = s.changeAt
		}
		lo, hi = min(lo, len(s.owned)), max(hi, len(s.owned))
		for _, p := range s.owned {
			if int(p) >= partitions || seen[p] {
				ok = false
				continue
			}
			seen[p] = true
		}
		if s.consumingAt.IsZero() {
			ok = false
		}
	}
	if slices.Contains(seen, false) || hi-lo > 1 {
		ok = false
	}
	return ok, last
}

func totalEvents(members []*member) int {
	n := 0
	for _, m := range members {
		n += m.state().nEvents
	}
	return n
}

// waitFor polls cond every 10ms until it holds, the timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// closeMembers closes every member at once (each leaves the group), bounded in time.
func closeMembers(members []*member, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := true
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !m.close(deadline) {
				mu.Lock()
				ok = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ok
}

// describeMembers is the diagnostic appended to a failed round.
func describeMembers(members []*member) string {
	var b strings.Builder
	for _, m := range members {
		s := m.state()
		fmt.Fprintf(&b, "; member %d owns %v, consuming=%v", m.idx, s.owned, !s.consumingAt.IsZero())
		if errs := m.fetchErrors(); len(errs) > 0 {
			fmt.Fprintf(&b, ", errors %s", strings.Join(errs, ", "))
		}
	}
	return b.String()
}
