package replica

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/storage"
)

// Follower fetchers (Kafka's ReplicaFetcherThread and AbstractFetcherThread): for each source
// broker, num.replica.fetchers goroutines, each with the partitions that hash to it. A fetcher
// first truncates each new partition with OffsetForLeaderEpoch, then sends Fetch requests as
// replica NodeID from each partition's log end and appends what comes back. One kgo client per
// fetcher sends raw requests to the leader's seed broker (no routing); it is closed when the
// fetcher has no partitions left.

// followTarget is what the image says a followed partition's fetcher needs.
type followTarget struct {
	leader  int32
	addr    string // leader's inter-broker endpoint; "" while the leader is not registered
	epoch   int32
	topicID [16]byte
}

type fetcherKey struct {
	leader int32
	index  int
}

// fetcherManager owns the fetchers; update (from Apply) moves partitions between them.
type fetcherManager struct {
	m  *Manager
	mu sync.Mutex // guards fetchers and closed; never held while waiting for a fetcher
	// fetchers by source broker and index.
	fetchers map[fetcherKey]*fetcher
	closed   bool
}

func newFetcherManager(m *Manager) *fetcherManager {
	return &fetcherManager{m: m, fetchers: make(map[fetcherKey]*fetcher)}
}

// fetchState is one partition in a fetcher.
type fetchState struct {
	target followTarget
	// truncating: OffsetForLeaderEpoch truncation is not done yet for this leader epoch.
	truncating bool
	// backoffUntil delays the partition after an error.
	backoffUntil time.Time
	// caughtUp: the last fetch brought the log to the leader's high watermark (Kafka's
	// PartitionFetchState.isReplicaInSync); the replication throttle spares it, as it spares
	// a replica in the ISR.
	caughtUp bool
}

// fetcher is one fetcher goroutine and its client.
type fetcher struct {
	fm     *fetcherManager
	key    fetcherKey
	addr   string
	client *kgo.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// session is the fetch session with the leader, used by the fetcher goroutine alone.
	session fetchSessionClient

	mu struct {
		sync.Mutex
		parts map[TopicPartition]*fetchState
		wake  chan struct{} // closed (and replaced) when partitions are added or changed
	}
}

func (fm *fetcherManager) index(tp TopicPartition) int {
	h := fnv.New32a()
	h.Write([]byte(tp.Topic))
	return int((h.Sum32()*31 + uint32(tp.Partition)) % uint32(fm.m.cfg.NumReplicaFetchers))
}

// update makes the fetchers follow exactly targets: partitions whose leader, address or epoch
// changed move or restart with truncation; fetchers left empty stop.
func (fm *fetcherManager) update(targets map[TopicPartition]followTarget) {
	fm.mu.Lock()
	if fm.closed {
		fm.mu.Unlock()
		return
	}
	var stop []*fetcher
	// Drop partitions no longer followed from this fetcher, and fetchers whose leader moved.
	for key, f := range fm.fetchers {
		f.mu.Lock()
		for tp, st := range f.mu.parts {
			if t, ok := targets[tp]; !ok || t.leader != key.leader || t.addr != f.addr {
				delete(f.mu.parts, tp)
			} else if t.epoch != st.target.epoch {
				*st = fetchState{target: t, truncating: true}
			}
		}
		empty := len(f.mu.parts) == 0
		f.wakeLocked()
		f.mu.Unlock()
		if empty {
			delete(fm.fetchers, key)
			stop = append(stop, f)
		}
	}
	for tp, t := range targets {
		if t.addr == "" {
			continue // the leader is not registered yet; a later image brings it
		}
		key := fetcherKey{t.leader, fm.index(tp)}
		f := fm.fetchers[key]
		if f == nil {
			var err error
			if f, err = fm.startFetcher(key, t.addr); err != nil {
				fm.m.log.Error("starting replica fetcher", "leader", t.leader, "addr", t.addr, "err", err)
				continue
			}
			fm.fetchers[key] = f
		}
		f.mu.Lock()
		if _, ok := f.mu.parts[tp]; !ok {
			f.mu.parts[tp] = &fetchState{target: t, truncating: true}
			f.wakeLocked()
		}
		f.mu.Unlock()
	}
	fm.mu.Unlock()
	for _, f := range stop {
		f.stop()
	}
}

// close stops every fetcher; update does nothing afterwards.
func (fm *fetcherManager) close() {
	fm.mu.Lock()
	fm.closed = true
	fs := fm.fetchers
	fm.fetchers = nil
	fm.mu.Unlock()
	for _, f := range fs {
		f.stop()
	}
}

func (fm *fetcherManager) startFetcher(key fetcherKey, addr string) (*fetcher, error) {
	client, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID(fmt.Sprintf("samsa-replica-fetcher-%d-%d-%d", fm.m.cfg.NodeID, key.leader, key.index)),
		kgo.FetchMaxWait(fm.m.cfg.ReplicaFetchWaitMax),
	}, fm.m.cfg.FetcherClientOpts...)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{fm: fm, key: key, addr: addr, client: client, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	f.mu.parts = make(map[TopicPartition]*fetchState)
	f.mu.wake = make(chan struct{})
	go f.run()
	return f, nil
}

func (f *fetcher) wakeLocked() {
	close(f.mu.wake)
	f.mu.wake = make(chan struct{})
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
	f.client.Close()
}

// warn logs a warning naming the fetcher.
func (f *fetcher) warn(msg string, args ...any) {
	f.fm.m.log.Warn(msg, append([]any{"leader", f.key.leader, "fetcher", f.key.index}, args...)...)
}

// run is the fetcher goroutine: truncate the partitions that need it, fetch the others, and
// wait for work (a partition added, a backoff passed) when there is none.
func (f *fetcher) run() {
	defer close(f.done)
	for f.ctx.Err() == nil {
		now := time.Now()
		f.mu.Lock()
		wake := f.mu.wake
		var truncate, fetch []TopicPartition
		var next time.Time
		for tp, st := range f.mu.parts {
			if now.Before(st.backoffUntil) {
				if next.IsZero() || st.backoffUntil.Before(next) {
					next = st.backoffUntil
				}
				continue
			}
			if st.truncating {
				truncate = append(truncate, tp)
			} else {
				fetch = append(fetch, tp)
			}
		}
		f.mu.Unlock()
		if len(truncate) > 0 {
			f.truncate(truncate)
			continue
		}
		if len(fetch) > 0 {
			f.fetch(fetch)
			continue
		}
		var timer *time.Timer
		var timeout <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			timeout = timer.C
		}
		select {
		case <-f.ctx.Done():
		case <-wake:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// state returns a copy of tp's state, or false when the partition left this fetcher.
func (f *fetcher) state(tp TopicPartition) (fetchState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.mu.parts[tp]
	if !ok {
		return fetchState{}, false
	}
	return *st, true
}

// setState changes tp's state if it is still at the same leader epoch.
func (f *fetcher) setState(tp TopicPartition, epoch int32, fn func(*fetchState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.mu.parts[tp]; ok && st.target.epoch == epoch {
		fn(st)
	}
}

func (f *fetcher) backoff(tp TopicPartition, epoch int32) {
	until := time.Now().Add(f.fm.m.cfg.ReplicaFetchBackoff)
	f.setState(tp, epoch, func(st *fetchState) { st.backoffUntil = until })
}

// partition returns tp's open partition if this node still follows the fetcher's leader at
// the state's epoch.
func (f *fetcher) partition(tp TopicPartition, st fetchState) *Partition {
	p := f.fm.m.Partition(tp.Topic, tp.Partition)
	if p == nil || !p.followsAt(f.key.leader, st.target.epoch) {
		return nil
	}
	return p
}

// truncate runs one round of OffsetForLeaderEpoch truncation for tps (KIP-101, KIP-279).
func (f *fetcher) truncate(tps []TopicPartition) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.fm.m.cfg.NodeID
	type ask struct {
		p  *Partition
		st fetchState
	}
	asked := make(map[TopicPartition]ask)
	byTopic := make(map[string]int)
	for _, tp := range tps {
		p, st, ok := f.ready(tp)
		if !ok {
			continue
		}
		latest, ok := p.log.LatestEpoch()
		if !ok {
			// No epoch known (an empty or pre-epoch log): truncate to the high watermark.
			f.finishTruncation(tp, p, st, p.HighWatermark())
			continue
		}
		i, ok := byTopic[tp.Topic]
		if !ok {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[tp.Topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tp.Partition, st.target.epoch, latest
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		asked[tp] = ask{p, st}
	}
	if len(asked) == 0 {
		return
	}
	resp, err := f.client.SeedBrokers()[0].Request(f.ctx, req)
	if err != nil {
		if f.ctx.Err() == nil {
			f.warn("OffsetForLeaderEpoch failed; backing off", "err", err)
		}
		for tp, a := range asked {
			if errors.Is(err, kerr.UnsupportedVersion) {
				f.finishTruncation(tp, a.p, a.st, a.p.HighWatermark())
			} else {
				f.backoff(tp, a.st.target.epoch)
			}
		}
		return
	}
	for _, rt := range resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		for _, rp := range rt.Partitions {
			tp := TopicPartition{rt.Topic, rp.Partition}
			a, ok := asked[tp]
			if !ok {
				continue
			}
			delete(asked, tp)
			if rp.ErrorCode != 0 {
				f.warn("OffsetForLeaderEpoch refused; backing off", "topic", tp.Topic, "partition", tp.Partition, "err", kerr.ErrorForCode(rp.ErrorCode))
				f.backoff(tp, a.st.target.epoch)
				continue
			}
			logEnd := a.p.log.LogEndOffset()
			if rp.EndOffset < 0 {
				// The leader knows no epoch at or below ours.
				f.finishTruncation(tp, a.p, a.st, a.p.HighWatermark())
				continue
			}
			ownEpoch, ownEnd := a.p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			if ownEnd < 0 {
				f.finishTruncation(tp, a.p, a.st, a.p.HighWatermark())
				continue
			}
			off, done := truncationOffset(rp.LeaderEpoch, rp.EndOffset, ownEpoch, ownEnd, logEnd)
			if done {
				f.finishTruncation(tp, a.p, a.st, off)
			} else if err := a.p.truncateAsFollower(f.key.leader, a.st.target.epoch, off); err != nil {
				f.warn("truncating", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				f.backoff(tp, a.st.target.epoch)
			}
		}
	}
	for tp, a := range asked { // not in the answer
		f.backoff(tp, a.st.target.epoch)
	}
}

// finishTruncation truncates to offset and starts fetching.
func (f *fetcher) finishTruncation(tp TopicPartition, p *Partition, st fetchState, offset int64) {
	if err := p.truncateAsFollower(f.key.leader, st.target.epoch, offset); err != nil {
		f.warn("truncating", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		f.backoff(tp, st.target.epoch)
		return
	}
	f.setState(tp, st.target.epoch, func(s *fetchState) { s.truncating = false })
}

// fetch sends one Fetch for tps and applies the answer. In a fetch session (fetcher_session.go)
// the request names only the partitions whose fetch parameters changed, and the answer holds
// only the partitions with something new.
func (f *fetcher) fetch(tps []TopicPartition) {
	cfg := &f.fm.m.cfg
	type sent struct {
		p  *Partition
		st fetchState
	}
	asked := make(map[TopicPartition]sent)
	want := make(map[TopicPartition]sessionPartition)
	topicNames := make(map[[16]byte]string)
	// Over follower.replication.throttled.rate, throttled replicas neither in the ISR nor
	// caught up are left out of the request (Kafka's shouldFollowerThrottle).
	fq := f.fm.m.followerQuota
	overQuota := fq.Limit() > 0 && fq.any() && fq.Exceeded(time.Now())
	held := false
	for _, tp := range tps {
		p, st, ok := f.ready(tp)
		if !ok {
			continue
		}
		if overQuota {
			if throttled, inISR := fq.Throttled(tp); throttled && !inISR && !st.caughtUp {
				held = true
				continue
			}
		}
		asked[tp] = sent{p, st}
		want[tp] = sessionPartition{topicID: st.target.topicID, fetchOffset: p.log.LogEndOffset(),
			logStartOffset: p.log.LogStartOffset(), maxBytes: cfg.ReplicaFetchMaxBytes, leaderEpoch: st.target.epoch}
		topicNames[st.target.topicID] = tp.Topic
	}
	if len(asked) == 0 {
		if held {
			f.waitThrottled()
		}
		return
	}
	sf := f.session.build(want)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = cfg.NodeID
	req.ReplicaState.ID, req.ReplicaState.Epoch = cfg.NodeID, -1
	req.MaxWaitMillis = int32(cfg.ReplicaFetchWaitMax.Milliseconds())
	req.MinBytes = cfg.ReplicaFetchMinBytes
	req.MaxBytes = cfg.ReplicaFetchResponseMaxBytes
	req.SessionID, req.SessionEpoch = sf.id, sf.epoch
	byTopic := make(map[string]int)
	for _, tp := range sf.send {
		w := want[tp]
		i, ok := byTopic[tp.Topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = tp.Topic, w.topicID
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[tp.Topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = tp.Partition, w.leaderEpoch
		rp.FetchOffset, rp.LogStartOffset = w.fetchOffset, w.logStartOffset
		rp.LastFetchedEpoch = -1
		rp.PartitionMaxBytes = w.maxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	forgotten := make(map[string]int)
	for _, fp := range sf.forget {
		i, ok := forgotten[fp.tp.Topic]
		if !ok {
			t := kmsg.NewFetchRequestForgottenTopic()
			t.Topic, t.TopicID = fp.tp.Topic, fp.topicID
			req.ForgottenTopics = append(req.ForgottenTopics, t)
			i = len(req.ForgottenTopics) - 1
			forgotten[fp.tp.Topic] = i
		}
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, fp.tp.Partition)
	}
	kresp, err := f.client.SeedBrokers()[0].Request(f.ctx, req)
	if err != nil {
		f.session.handleError()
	} else if resp := kresp.(*kmsg.FetchResponse); !f.session.handleResponse(sf, resp) {
		err = kerr.ErrorForCode(resp.ErrorCode) // set: a full fetch fails only with an error
		if !sf.full {
			// The session is gone or out of step: fetch in full at once.
			f.fm.m.log.Info("replica fetch session reset", "leader", f.key.leader, "fetcher", f.key.index, "session", sf.id, "err", err)
			return
		}
	}
	if err != nil {
		if f.ctx.Err() == nil {
			f.warn("fetch failed; backing off", "err", err)
		}
		for tp, s := range asked {
			f.backoff(tp, s.st.target.epoch)
		}
		return
	}
	for _, rt := range kresp.(*kmsg.FetchResponse).Topics {
		name := rt.Topic
		if name == "" {
			name = topicNames[rt.TopicID]
		}
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			tp := TopicPartition{name, rp.Partition}
			s, ok := asked[tp]
			if !ok {
				continue
			}
			delete(asked, tp)
			f.handlePartition(tp, s.p, s.st, rp)
		}
	}
}

// handlePartition applies one partition's fetch answer.
func (f *fetcher) handlePartition(tp TopicPartition, p *Partition, st fetchState, rp *kmsg.FetchResponseTopicPartition) {
	epoch := st.target.epoch
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
		data := rp.RecordBatches
		// Keep whole batches only: a leader may cut the last one at the size limit.
		if rest, _ := records.Split(data, func([]byte) error { return nil }); rest > 0 {
			data = data[:len(data)-rest]
		}
		if throttled, _ := f.fm.m.followerQuota.Throttled(tp); throttled {
			// In-sync or not, a throttled replica's bytes count against the rate.
			f.fm.m.followerQuota.Record(len(data), time.Now())
		}
		err := p.appendAsFollower(f.key.leader, epoch, data, rp.HighWatermark, rp.LogStartOffset)
		if err == nil {
			caughtUp := p.log.LogEndOffset() >= rp.HighWatermark
			if caughtUp != st.caughtUp {
				f.setState(tp, epoch, func(s *fetchState) { s.caughtUp = caughtUp })
			}
		}
		switch {
		case err == nil, errors.Is(err, ErrNotLeader):
		case errors.Is(err, storage.ErrUnexpectedAppendOffset):
			f.warn("fetched batches do not follow the log; truncating again", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			f.setState(tp, epoch, func(s *fetchState) { s.truncating = true })
		default:
			f.warn("appending fetched batches", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			f.backoff(tp, epoch)
		}
	case errors.Is(err, kerr.OffsetOutOfRange):
		f.handleOutOfRange(tp, p, st)
	default:
		// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH (the leader has
		// not applied the image yet), storage errors: wait, then ask again; an image change
		// resets the partition.
		f.warn("fetch refused; backing off", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		f.backoff(tp, epoch)
	}
}

// handleOutOfRange asks the leader for its log end and start (ListOffsets as a replica) and
// truncates to its end, or restarts at its start.
func (f *fetcher) handleOutOfRange(tp TopicPartition, p *Partition, st fetchState) {
	epoch := st.target.epoch
	leaderEnd, err1 := f.listOffset(tp, epoch, -1)
	leaderStart, err2 := f.listOffset(tp, epoch, -2)
	if err := errors.Join(err1, err2); err != nil {
		f.warn("listing the leader's offsets after OFFSET_OUT_OF_RANGE", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		f.backoff(tp, epoch)
		return
	}
	truncateTo, restartAt := outOfRangeAction(p.log.LogEndOffset(), leaderEnd, leaderStart)
	var err error
	switch {
	case truncateTo >= 0:
		err = p.truncateAsFollower(f.key.leader, epoch, truncateTo)
	case restartAt >= 0:
		f.fm.m.log.Info("follower log ends below the leader's log start; restarting it there", "topic", tp.Topic, "partition", tp.Partition, "offset", restartAt)
		err = p.restartAsFollowerAt(f.key.leader, epoch, restartAt)
	default:
		f.backoff(tp, epoch) // the leader's range moved meanwhile; try again
	}
	if err != nil {
		f.warn("handling OFFSET_OUT_OF_RANGE", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		f.backoff(tp, epoch)
	}
}

// listOffset sends ListOffsets as this replica (the leader answers its log end for latest).
func (f *fetcher) listOffset(tp TopicPartition, epoch int32, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = f.fm.m.cfg.NodeID
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = tp.Topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.CurrentLeaderEpoch, p.Timestamp = tp.Partition, epoch, timestamp
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := f.client.SeedBrokers()[0].Request(f.ctx, req)
	if err != nil {
		return 0, err
	}
	for _, rt := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == tp.Topic && rp.Partition == tp.Partition {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return 0, err
				}
				return rp.Offset, nil
			}
		}
	}
	return 0, fmt.Errorf("ListOffsets answer lacks %s-%d", tp.Topic, tp.Partition)
}

// waitThrottled waits replica.fetch.backoff.ms, or less if partitions change or the fetcher
// stops, when every partition was held back by the follower's replication throttle (Kafka's
// fetcher waits its backoff on an empty request).
func (f *fetcher) waitThrottled() {
	f.mu.Lock()
	wake := f.mu.wake
	f.mu.Unlock()
	t := time.NewTimer(f.fm.m.cfg.ReplicaFetchBackoff)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
	case <-wake:
	case <-t.C:
	}
}

// ready returns a partition this fetcher should send a request for, with its state; a
// partition whose log is not available is backed off and not ready.
func (f *fetcher) ready(tp TopicPartition) (*Partition, fetchState, bool) {
	st, ok := f.state(tp)
	if !ok {
		return nil, st, false
	}
	p := f.partition(tp, st)
	if p == nil {
		f.backoff(tp, st.target.epoch)
		return nil, st, false
	}
	return p, st, true
}
