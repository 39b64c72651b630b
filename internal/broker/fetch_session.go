package broker

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
)

// Fetch sessions (KIP-227), as Kafka's FetchSessionCache keeps them. A fetch with session
// epoch 0 opens a session: the broker answers with a new session id holding every partition
// of the request. Later fetches name the session and its next epoch (1, 2, ...) and are
// incremental: they name only the partitions that are new or whose fetch parameters changed,
// and list in ForgottenTopics those to drop. The broker fetches every partition of the session
// (those not named at their cached offsets) and answers only the partitions with something to
// say: records, a changed high watermark, last stable offset or log start offset, an error, or
// a preferred read replica.
//
// Epoch -1 fetches in full with no session (closing the one named, if any); epoch 0 with a
// session id closes that session and opens a new one. A wrong epoch is
// INVALID_FETCH_SESSION_EPOCH, an unknown session FETCH_SESSION_ID_NOT_FOUND, a session opened
// with topic ids (v13+) continued without them or the other way round
// FETCH_SESSION_TOPIC_ID_ERROR; each answers no partition and session id 0.
//
// The cache holds at most max.incremental.fetch.session.cache.slots sessions. A full cache
// makes room as Kafka's tryEvict does: a follower's (privileged) session may evict a
// consumer's, and a session may evict one older than fetchSessionIdle with fewer partitions
// (fewer, or as many and a smaller id never happens: a new session's key has id 0). Sessions
// idle longer than fetchSessionIdle are dropped whenever a session is created (Kafka drops one
// only when it needs the slot; dropping them all then bounds the memory of abandoned
// sessions at no cost to live ones, which a client reopens with a full fetch).

// fetchSessionIdle is how long a session may go unused before it is stale (Kafka's
// MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS), and how old a session must be before a larger
// one may evict it.
const fetchSessionIdle = 120 * time.Second

// sessionKey names a partition in a session: by topic id in a session of v13+ fetches, by
// topic name before.
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// cachedPartition is one partition of a session: the fetcher's parameters as last named, and
// what the last response carrying the partition told it.
type cachedPartition struct {
	key                sessionKey
	fetchOffset        int64
	logStartOffset     int64 // the fetcher's (a follower's) log start
	maxBytes           int32
	currentLeaderEpoch int32
	lastFetchedEpoch   int32

	highWatermark    int64
	lastStableOffset int64
	localLogStart    int64 // this broker's log start, as last answered

	prev, next *cachedPartition // the session's order
}

func (cp *cachedPartition) setRequest(rp *kmsg.FetchRequestTopicPartition) {
	cp.fetchOffset, cp.logStartOffset = rp.FetchOffset, rp.LogStartOffset
	cp.maxBytes = rp.PartitionMaxBytes
	cp.currentLeaderEpoch, cp.lastFetchedEpoch = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch
}

// mustRespond reports whether an incremental response must carry sp (Kafka's
// maybeUpdateResponseData) and records what it tells the fetcher. recordBytes is the size of
// its records (in memory or a sendfile region).
func (cp *cachedPartition) mustRespond(sp *kmsg.FetchResponseTopicPartition, recordBytes int64) bool {
	must := recordBytes > 0 || sp.PreferredReadReplica >= 0 ||
		sp.DivergingEpoch.Epoch >= 0 || sp.DivergingEpoch.EndOffset >= 0
	if cp.highWatermark != sp.HighWatermark || cp.lastStableOffset != sp.LastStableOffset ||
		cp.localLogStart != sp.LogStartOffset || sp.ErrorCode != 0 {
		must = true
	}
	cp.told(sp)
	return must
}

// told records what a response carrying sp tells the fetcher. After an error the high
// watermark is forgotten, so the partition is sent again once the error is gone.
func (cp *cachedPartition) told(sp *kmsg.FetchResponseTopicPartition) {
	cp.highWatermark, cp.lastStableOffset, cp.localLogStart = sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset
	if sp.ErrorCode != 0 {
		cp.highWatermark = -1
	}
}

// fetchSession is one session. id, privileged, usesTopicIDs and created never change; elem,
// lastUsed and size belong to the cache (fetchSessionCache.mu); the rest to mu.
type fetchSession struct {
	id           int32
	privileged   bool // opened by a follower
	usesTopicIDs bool // opened by a v13+ fetch
	created      time.Time

	elem     *list.Element // in fetchSessionCache.mu.lastUsed
	lastUsed time.Time
	size     int // partitions as of the last touch (Kafka's cachedSize)

	mu struct {
		sync.Mutex
		epoch      int32 // the epoch the next request must carry
		parts      map[sessionKey]*cachedPartition
		head, tail *cachedPartition
	}
}

func (s *fetchSession) pushLocked(cp *cachedPartition) {
	cp.prev, cp.next = s.mu.tail, nil
	if s.mu.tail != nil {
		s.mu.tail.next = cp
	} else {
		s.mu.head = cp
	}
	s.mu.tail = cp
}

func (s *fetchSession) unlinkLocked(cp *cachedPartition) {
	if cp.prev != nil {
		cp.prev.next = cp.next
	} else {
		s.mu.head = cp.next
	}
	if cp.next != nil {
		cp.next.prev = cp.prev
	} else {
		s.mu.tail = cp.prev
	}
	cp.prev, cp.next = nil, nil
}

// nameLocked adds the partitions of topics to the session or updates their parameters, and
// calls each (if set) with every named partition and its place in topics.
func (s *fetchSession) nameLocked(topics []kmsg.FetchRequestTopic, each func(cp *cachedPartition, i, j int)) {
	for i := range topics {
		rt := &topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := s.key(rt.Topic, rt.TopicID, rp.Partition)
			cp := s.mu.parts[k]
			if cp == nil {
				cp = &cachedPartition{key: k, highWatermark: -1, lastStableOffset: -1, localLogStart: -1}
				s.mu.parts[k] = cp
				s.pushLocked(cp)
			}
			cp.setRequest(rp)
			if each != nil {
				each(cp, i, j)
			}
		}
	}
}

// updateLocked applies an incremental request: named partitions are added or take the new
// parameters, forgotten ones leave.
func (s *fetchSession) updateLocked(r *kmsg.FetchRequest) {
	s.nameLocked(r.Topics, nil)
	for i := range r.ForgottenTopics {
		ft := &r.ForgottenTopics[i]
		for _, p := range ft.Partitions {
			k := s.key(ft.Topic, ft.TopicID, p)
			if cp := s.mu.parts[k]; cp != nil {
				delete(s.mu.parts, k)
				s.unlinkLocked(cp)
			}
		}
	}
}

func (s *fetchSession) key(topic string, id [16]byte, partition int32) sessionKey {
	if s.usesTopicIDs {
		return sessionKey{topicID: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// requestLocked returns every partition of the session, in its order, as the topics of a
// request (a topic appears once per run of its partitions), and the cached partitions in the
// same layout.
func (s *fetchSession) requestLocked() ([]kmsg.FetchRequestTopic, [][]*cachedPartition) {
	var topics []kmsg.FetchRequestTopic
	var cached [][]*cachedPartition
	for cp := s.mu.head; cp != nil; cp = cp.next {
		if n := len(topics); n == 0 || topics[n-1].Topic != cp.key.topic || topics[n-1].TopicID != cp.key.topicID {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = cp.key.topic, cp.key.topicID
			topics = append(topics, t)
			cached = append(cached, nil)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = cp.key.partition
		rp.FetchOffset, rp.LogStartOffset = cp.fetchOffset, cp.logStartOffset
		rp.PartitionMaxBytes = cp.maxBytes
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = cp.currentLeaderEpoch, cp.lastFetchedEpoch
		n := len(topics) - 1
		topics[n].Partitions = append(topics[n].Partitions, rp)
		cached[n] = append(cached[n], cp)
	}
	return topics, cached
}

// nextSessionEpoch is Kafka's FetchMetadata.nextEpoch: 1 follows the largest epoch.
func nextSessionEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}

// fetchSessionCache holds the sessions. Lock order: mu, then a session's mu; finish takes a
// session's mu alone.
type fetchSessionCache struct {
	slots int
	idle  time.Duration

	incremental atomic.Int64 // incremental fetches served

	mu struct {
		sync.Mutex
		sessions   map[int32]*fetchSession
		lastUsed   list.List // *fetchSession, least recently used first
		partitions int       // sum of the sessions' sizes
		evictions  int64
	}
}

func newFetchSessionCache(slots int, idle time.Duration) *fetchSessionCache {
	c := &fetchSessionCache{slots: slots, idle: idle}
	c.mu.sessions = make(map[int32]*fetchSession)
	return c
}

// FetchSessionStats are the figures of the broker's fetch-session cache, as Kafka's
// NumIncrementalFetchSessions, NumIncrementalFetchPartitionsCached and
// IncrementalFetchSessionEvictionsPerSec (a count here), and the incremental fetches served.
type FetchSessionStats struct {
	Sessions           int
	Partitions         int
	Evictions          int64
	IncrementalFetches int64
}

// FetchSessionStats returns the fetch-session cache's figures.
func (b *Broker) FetchSessionStats() FetchSessionStats { return b.fetchSessions.stats() }

func (c *fetchSessionCache) stats() FetchSessionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return FetchSessionStats{Sessions: len(c.mu.sessions), Partitions: c.mu.partitions,
		Evictions: c.mu.evictions, IncrementalFetches: c.incremental.Load()}
}

type fetchUseKind int8

const (
	fetchSessionless fetchUseKind = iota // full, answered with session id 0
	fetchOpen                            // full, opening a session if there is room
	fetchIncremental                     // served from a session
)

// fetchUse is what begin decided for one request.
type fetchUse struct {
	kind fetchUseKind
	// errCode, when set, is the whole answer (a session error).
	errCode int16
	// topics are the partitions to serve, in order: the request's, or for an incremental
	// fetch every partition of the session.
	topics []kmsg.FetchRequestTopic
	// incremental: the session, its cached partitions laid out as topics, and its epoch
	// after this request.
	session *fetchSession
	cached  [][]*cachedPartition
	epoch   int32
	// opening: the new session's kind.
	privileged, usesTopicIDs bool
}

// begin resolves a request's session (Kafka's FetchManager.newContext). follower: the request
// comes from a replica.
func (c *fetchSessionCache) begin(r *kmsg.FetchRequest, follower bool, now time.Time) fetchUse {
	u := fetchUse{topics: r.Topics, privileged: follower, usesTopicIDs: r.Version >= 13}
	if r.Version < 7 {
		return u // no sessions before v7
	}
	if r.SessionEpoch == 0 || r.SessionEpoch == -1 {
		// A full fetch closes the session it names.
		if r.SessionID != 0 {
			c.remove(r.SessionID)
		}
		if r.SessionEpoch == 0 && c.slots > 0 {
			u.kind = fetchOpen
		}
		return u
	}
	c.mu.Lock()
	s := c.mu.sessions[r.SessionID]
	if s == nil {
		c.mu.Unlock()
		u.errCode = kerr.FetchSessionIDNotFound.Code
		return u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mu.epoch != r.SessionEpoch:
		u.errCode = kerr.InvalidFetchSessionEpoch.Code
	case s.usesTopicIDs != (r.Version >= 13):
		u.errCode = kerr.FetchSessionTopicIDError.Code
	}
	if u.errCode != 0 {
		c.mu.Unlock()
		return u
	}
	s.updateLocked(r)
	if len(s.mu.parts) == 0 {
		// Nothing left: the session ends and the request is served on its own.
		c.removeLocked(s)
		c.mu.Unlock()
		return u
	}
	c.touchLocked(s, now)
	c.mu.Unlock()
	s.mu.epoch = nextSessionEpoch(s.mu.epoch)
	u.kind, u.session, u.epoch = fetchIncremental, s, s.mu.epoch
	u.topics, u.cached = s.requestLocked()
	c.incremental.Add(1)
	return u
}

// finish completes the response of a request begun with u: the session id, and for an
// incremental fetch only the partitions the session must be told about (regions, the
// sendfile regions of the response's partitions, follow them); a full fetch with epoch 0 opens
// its session here, from the request and what the response told.
func (c *fetchSessionCache) finish(u *fetchUse, resp *kmsg.FetchResponse, regions map[*kmsgPartition]*storage.Region, now time.Time) {
	switch u.kind {
	case fetchSessionless:
		resp.SessionID = 0
	case fetchOpen:
		resp.SessionID = c.open(u, resp, now)
	case fetchIncremental:
		s := u.session
		s.mu.Lock()
		defer s.mu.Unlock()
		resp.SessionID = s.id
		if s.mu.epoch != u.epoch {
			// Another request of the session came meanwhile (a duplicate): as Kafka.
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			resp.Topics = nil
			clear(regions)
			return
		}
		filterIncrementalLocked(s, u.cached, resp, regions)
	}
}

func regionLen(regions map[*kmsgPartition]*storage.Region, sp *kmsgPartition) int64 {
	if r := regions[sp]; r != nil {
		return r.Len
	}
	return 0
}

// filterIncrementalLocked keeps in resp the partitions the session must be told about, and
// moves those with records to the end of the session's order so that, under the response
// size limits, the others go first next time (Kafka does the same).
func filterIncrementalLocked(s *fetchSession, cached [][]*cachedPartition, resp *kmsg.FetchResponse, regions map[*kmsgPartition]*storage.Region) {
	var topics []kmsg.FetchResponseTopic
	moved := make(map[*kmsgPartition]*storage.Region)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		var parts []kmsg.FetchResponseTopicPartition
		var regs []*storage.Region
		for j := range t.Partitions {
			sp := &t.Partitions[j]
			n := int64(len(sp.RecordBatches)) + regionLen(regions, sp)
			cp := cached[i][j]
			if !cp.mustRespond(sp, n) {
				continue
			}
			if n > 0 {
				s.unlinkLocked(cp)
				s.pushLocked(cp)
			}
			parts = append(parts, *sp)
			regs = append(regs, regions[sp])
		}
		if len(parts) == 0 {
			continue
		}
		// The kept partitions live in a new array: key their regions by their new places.
		for j, r := range regs {
			if r != nil {
				moved[&parts[j]] = r
			}
		}
		kt := *t
		kt.Partitions = parts
		topics = append(topics, kt)
	}
	clear(regions)
	for k, v := range moved {
		regions[k] = v
	}
	resp.Topics = topics
}

// open makes the session of a full fetch with epoch 0 (Kafka's maybeCreateSession), returning
// its id, or 0 when the cache has no room for it.
func (c *fetchSessionCache) open(u *fetchUse, resp *kmsg.FetchResponse, now time.Time) int32 {
	s := &fetchSession{privileged: u.privileged, usesTopicIDs: u.usesTopicIDs, created: now}
	s.mu.parts = make(map[sessionKey]*cachedPartition)
	s.nameLocked(u.topics, func(cp *cachedPartition, i, j int) { cp.told(&resp.Topics[i].Partitions[j]) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	if len(c.mu.sessions) >= c.slots && !c.evictLocked(s.privileged, len(s.mu.parts), now) {
		return 0
	}
	for s.id == 0 || c.mu.sessions[s.id] != nil {
		s.id = rand.Int32N(math.MaxInt32-1) + 1
	}
	s.mu.epoch = 1
	c.mu.sessions[s.id] = s
	s.elem = c.mu.lastUsed.PushBack(s)
	c.touchLocked(s, now)
	return s.id
}

// touchLocked records a use of s (c.mu and s.mu held, or s not yet shared).
func (c *fetchSessionCache) touchLocked(s *fetchSession, now time.Time) {
	s.lastUsed = now
	c.mu.lastUsed.MoveToBack(s.elem)
	c.mu.partitions += len(s.mu.parts) - s.size
	s.size = len(s.mu.parts)
}

func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.mu.sessions[id]; s != nil {
		c.removeLocked(s)
	}
}

func (c *fetchSessionCache) removeLocked(s *fetchSession) {
	if c.mu.sessions[s.id] != s {
		return
	}
	delete(c.mu.sessions, s.id)
	c.mu.lastUsed.Remove(s.elem)
	c.mu.partitions -= s.size
}

// expireLocked drops the sessions unused for longer than the idle time.
func (c *fetchSessionCache) expireLocked(now time.Time) {
	for e := c.mu.lastUsed.Front(); e != nil; e = c.mu.lastUsed.Front() {
		s := e.Value.(*fetchSession)
		if now.Sub(s.lastUsed) <= c.idle {
			return
		}
		c.removeLocked(s)
		c.mu.evictions++
	}
}

// evictLocked makes room for a new session of size partitions (Kafka's tryEvict once no
// session is stale): the least valuable evictable session (a consumer's first, then the
// fewest partitions, then the smallest id) goes if the new one is worth more. A session is
// evictable once it is older than the idle time, and by a follower's session if it is a
// consumer's.
func (c *fetchSessionCache) evictLocked(privileged bool, size int, now time.Time) bool {
	var victim *fetchSession
	for _, s := range c.mu.sessions {
		if now.Sub(s.created) <= c.idle && (!privileged || s.privileged) {
			continue
		}
		if victim == nil || evictsBefore(s.privileged, s.size, s.id, victim) {
			victim = s
		}
	}
	if victim == nil || evictsBefore(privileged, size, 0, victim) {
		return false
	}
	c.removeLocked(victim)
	c.mu.evictions++
	return true
}

// evictsBefore orders sessions by Kafka's EvictableKey (privileged, size, id).
func evictsBefore(privileged bool, size int, id int32, s *fetchSession) bool {
	if privileged != s.privileged {
		return !privileged
	}
	if size != s.size {
		return size < s.size
	}
	return id < s.id
}
