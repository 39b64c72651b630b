package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// member is one consumer of the measured group: a kgo client polling in its own goroutine,
// with timestamps of every assignment change and of the first record it received from each
// owned partition since its last change.
type member struct {
	idx     int
	cl      *kgo.Client
	started time.Time // just before kgo.NewClient

	mu       sync.Mutex
	owned    map[int32]bool
	events   []event
	changeAt time.Time           // last assignment change (or the mark)
	firstRec map[int32]time.Time // first record per owned partition received at or after changeAt
	records  int64
	errs     []string // distinct fetch errors, capped

	cancel context.CancelFunc
	done   chan struct{}
}

// memberState is a consistent snapshot of a member.
type memberState struct {
	owned    []int32
	changeAt time.Time
	// consumingAt is the first time the member received a record from a partition it
	// owns since its last change; zero if it has not.
	consumingAt time.Time
	nEvents     int
}

func (m *member) state() memberState {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := memberState{changeAt: m.changeAt, nEvents: len(m.events)}
	for p := range m.owned {
		s.owned = append(s.owned, p)
		if t, ok := m.firstRec[p]; ok && (s.consumingAt.IsZero() || t.Before(s.consumingAt)) {
			s.consumingAt = t
		}
	}
	slices.Sort(s.owned)
	return s
}

// mark restarts the "consuming since the last change" clock at t without recording an
// assignment change.
func (m *member) mark(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changeAt = t
	clear(m.firstRec)
}

func (m *member) eventsCopy() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

func (m *member) change(ps map[string][]int32, assigned bool) {
	at := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for _, parts := range ps {
		for _, p := range parts {
			if assigned == m.owned[p] {
				continue
			}
			changed = true
			if assigned {
				m.owned[p] = true
			} else {
				delete(m.owned, p)
			}
			m.events = append(m.events, event{at: at, member: m.idx, part: p, assigned: assigned})
		}
	}
	if changed {
		m.changeAt = at
		clear(m.firstRec)
	}
}

// startMember creates the client and starts polling. opts are the protocol's options.
func startMember(idx int, brokers []string, group, topic string, opts []kgo.Opt) (*member, error) {
	m := &member{idx: idx, owned: map[int32]bool{}, firstRec: map[int32]time.Time{}, done: make(chan struct{})}
	all := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(fmt.Sprintf("rebalance-bench-%d", idx)),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		// A new group starts at the end: only the trickle is consumed, not earlier rounds.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { m.change(ps, true) }),
		// Record the revocation first, then do what kgo's default OnPartitionsRevoked does
		// with autocommit: a blocking commit before giving the partitions up.
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			m.change(ps, false)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_ = cl.CommitUncommittedOffsets(cctx)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { m.change(ps, false) }),
	}
	all = append(all, opts...)
	m.started = time.Now()
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.poll(ctx)
	return m, nil
}

func (m *member) poll(ctx context.Context) {
	defer close(m.done)
	for ctx.Err() == nil {
		fs := m.cl.PollFetches(ctx)
		at := time.Now()
		if fs.IsClientClosed() {
			return
		}
		m.mu.Lock()
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil && len(m.errs) < 10 {
				msg := fmt.Sprintf("%s[%d]: %v", t, p, err)
				if !slices.Contains(m.errs, msg) {
					m.errs = append(m.errs, msg)
				}
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			m.records += int64(len(p.Records))
			// A record counts for "consuming since the last change" only if it was
			// returned after that change and its partition is still owned.
			if !m.owned[p.Partition] || at.Before(m.changeAt) {
				return
			}
			if _, ok := m.firstRec[p.Partition]; !ok {
				m.firstRec[p.Partition] = at
			}
		})
		m.mu.Unlock()
	}
}

// close stops polling and closes the client (leaving the group), waiting at most until the
// deadline.
func (m *member) close(deadline time.Time) bool {
	m.cancel()
	closed := make(chan struct{})
	go func() {
		m.cl.Close()
		close(closed)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		return false
	}
	select {
	case <-m.done:
	case <-t.C:
		return false
	}
	return true
}

func (m *member) fetchErrors() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.errs)
}
