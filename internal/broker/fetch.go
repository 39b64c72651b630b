package broker

import (
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/storage"
)

// Fetch v4 is the first version that returns v2 batches with the last stable offset; v13+
// name topics by id.
func init() { register(kmsg.Fetch.Int16(), 4, 16, handleFetch) }

// fetchPart is one requested partition, resolved once per request.
type fetchPart struct {
	req  *kmsg.FetchRequestTopicPartition
	resp *kmsg.FetchResponseTopicPartition
	p    *replica.Partition
	// follower: a follower's fetch, served up to the log end offset (not the high
	// watermark); leaderEnd is the log end at the first read, recorded as the follower's
	// fetch state.
	follower  bool
	leaderEnd int64
	// held: a follower's fetch of a replica the leader throttles (replica/throttle.go), over
	// leader.replication.throttled.rate with the follower out of the ISR: nothing is read.
	held bool
	// committed: a read_committed consumer (isolation_level 1), served up to the last stable
	// offset with the aborted transactions of what it gets.
	committed bool
}

func handleFetch(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)

	// A broker's fetch carries its replica id (v15+ in the ReplicaState tag); consumers send -1.
	replicaID := r.ReplicaID
	if r.Version >= 15 {
		replicaID = r.ReplicaState.ID
	}
	// The fetch session (KIP-227, fetch_session.go) says which partitions to serve: the
	// request's, or every partition of the session.
	use := b.fetchSessions.begin(r, replicaID >= 0, b.now())
	if use.errCode != 0 {
		resp.ErrorCode = use.errCode
		return resp, nil
	}
	img := b.ctrl.Image()
	leaders := leaderHints{}
	var parts []fetchPart
	// A replica's fetch needs CLUSTER_ACTION on the cluster, a consumer's READ on each topic.
	replicaAllowed := replicaID < 0 || b.authorizeCluster(req, kmsg.ACLOperationClusterAction)
	for i := range use.topics {
		rt := &use.topics[i]
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		var t *metadata.Topic
		var ok bool
		if r.Version >= 13 {
			t, ok = img.TopicByID(metadata.UUID(rt.TopicID))
		} else {
			t, ok = img.Topic(rt.Topic)
		}
		for j := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rt.Partitions[j].Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			sp.RecordBatches = emptyRecords
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		st2 := &resp.Topics[len(resp.Topics)-1]
		name := rt.Topic
		if ok {
			name = t.Name
		}
		allowed := replicaAllowed && (replicaID >= 0 || ((ok || r.Version < 13) && b.authorize(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, name)))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st2.Partitions[j]
			switch {
			case !allowed && (ok || r.Version < 13):
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			case !ok && r.Version >= 13:
				sp.ErrorCode = kerr.UnknownTopicID.Code
				continue
			case !ok:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			if replicaID >= 0 {
				p, perr := b.followerFetchPartition(t.Name, rp, replicaID)
				if perr != nil {
					sp.ErrorCode = perr.Code
					continue
				}
				parts = append(parts, fetchPart{req: rp, resp: sp, p: p, follower: true})
				continue
			}
			p, perr := b.partitionForConsumer(t.Name, rp.Partition, r.Version)
			if perr == nil {
				perr = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if perr == nil && r.Version >= 11 && r.Rack != "" && p.IsLeader() {
				if id := b.preferredReadReplica(img, t, rp.Partition, r.Rack); id >= 0 {
					// KIP-392: no records, only where to fetch them.
					sp.PreferredReadReplica = id
					hw := p.HighWatermark()
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, p.LastStableOffset(hw), p.Log().LogStartOffset()
					continue
				}
			}
			if perr != nil {
				sp.ErrorCode = perr.Code
				if r.Version >= 12 && (perr == kerr.NotLeaderForPartition || perr == kerr.FencedLeaderEpoch) {
					// KIP-951: tell the consumer where the partition went.
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leaders.note(img, t, rp.Partition)
				}
				continue
			}
			parts = append(parts, fetchPart{req: rp, resp: sp, p: p, committed: r.IsolationLevel == 1})
		}
	}

	if r.Version >= 16 {
		for _, id := range leaders.ids {
			if ep, ok := brokerEndpoint(img, id, req.conn.listener); ok {
				rb := kmsg.NewFetchResponseBroker()
				rb.NodeID, rb.Host, rb.Port, rb.Rack = id, ep.host, ep.port, ep.rack
				resp.Brokers = append(resp.Brokers, rb)
			}
		}
	}
	if req.conn.canSendfile() && b.sendfile {
		req.regions = make(map[*kmsgPartition]*storage.Region, len(parts))
	}
	if replicaID >= 0 {
		req.quotaExempt = true // replication is not subject to client quotas
		b.holdReplicationThrottled(parts, replicaID)
	} else {
		r.MaxBytes = b.fetchQuotaMaxBytes(req, r.MaxBytes)
	}
	b.readFetch(req, r, parts, replicaID)
	if replicaID < 0 {
		b.recordFetch(req, fetchedBytes(parts, req.regions))
	} else {
		b.recordReplicationThrottled(parts, req.regions)
	}
	b.fetchSessions.finish(&use, resp, req.regions, b.now())
	return resp, nil
}

// readFetch fills the responses of parts, waiting up to the request's MaxWait for MinBytes
// (woken by appends and high-watermark moves), and records a follower's fetch offsets.
func (b *Broker) readFetch(req *request, r *kmsg.FetchRequest, parts []fetchPart, replicaID int32) {
	maxBytes := int(b.cfg.FetchMaxBytes)
	if r.MaxBytes > 0 && int(r.MaxBytes) < maxBytes {
		maxBytes = int(r.MaxBytes)
	}
	deadline := time.Duration(r.MaxWaitMillis) * time.Millisecond
	var timer *time.Timer
	first := true
	for {
		// Take the wake-up channels before reading, so data appended after the read but
		// before the wait still wakes us.
		waits := make([]<-chan struct{}, 0, len(parts))
		for _, fp := range parts {
			waits = append(waits, fp.p.Wait())
		}
		total, anyErr := readFetchParts(parts, maxBytes, &req.bufs, req.regions)
		if first {
			// The leader records each follower's fetch offset as its log end offset once per
			// request (moving the high watermark and perhaps the ISR). In an incremental
			// fetch that is every partition of the session, at the offset the follower last
			// named (Kafka's rule: a partition left out of the request is still fetched).
			first = false
			for _, fp := range parts {
				if fp.follower {
					fp.p.UpdateFollowerFetch(replicaID, fp.req.FetchOffset, fp.leaderEnd)
				}
			}
		}
		if anyErr || total >= int(r.MinBytes) || r.MaxWaitMillis <= 0 || len(parts) == 0 {
			return
		}
		if timer == nil {
			timer = time.NewTimer(deadline)
			defer timer.Stop()
		}
		waitStart := time.Now()
		woken := waitAny(req.conn.waitCtx.Done(), timer.C, waits)
		req.waitedSince(waitStart)
		if !woken {
			// Timed out, shutting down or the client gone: answer with what there is.
			readFetchParts(parts, maxBytes, &req.bufs, req.regions)
			return
		}
	}
}

var emptyRecords = []byte{}

// readChunkSize is the size of the pooled chunks fetch reads are carved from: consecutive
// partition reads share a chunk, so the consume path neither allocates nor zeroes memory per
// partition. A read larger than a chunk allocates.
const readChunkSize = 1 << 20

var readChunkPool = sync.Pool{New: func() any { b := make([]byte, readChunkSize); return &b }}

// readBuffers is the memory a fetch response's record batches live in: pooled chunks handed
// out in order, returned to the pool once the response is written.
type readBuffers struct {
	held []*[]byte
	tail []byte // unused rest of the last chunk
	// regions are the sendfile regions the response refers to, pinned in the file cache
	// until released.
	regions []*storage.Region
}

// alloc returns n bytes from the current chunk, a new pooled chunk, or the heap.
func (r *readBuffers) alloc(n int) []byte {
	if n > readChunkSize {
		return make([]byte, n)
	}
	if n > len(r.tail) {
		c := readChunkPool.Get().(*[]byte)
		r.held = append(r.held, c)
		r.tail = *c
	}
	b := r.tail[:n:n]
	r.tail = r.tail[n:]
	return b
}

// release returns every held chunk; the data read into them must no longer be referenced.
func (r *readBuffers) release() {
	for _, c := range r.held {
		readChunkPool.Put(c)
	}
	r.held, r.tail = r.held[:0], nil
	for _, reg := range r.regions {
		reg.Release()
	}
	r.regions = r.regions[:0]
}

// readFetchParts fills each partition's response from its log. The first batch of the first
// partition with data is returned whole even beyond the limits (KIP-74), so a consumer can
// always make progress. It reports the bytes returned and whether any partition has an error.
func readFetchParts(parts []fetchPart, maxBytes int, bufs *readBuffers, regions map[*kmsgPartition]*storage.Region) (total int, anyErr bool) {
	bufs.release() // a re-read after a wait replaces everything read before
	clear(regions)
	for i := range parts {
		fp := &parts[i]
		sp, rp := fp.resp, fp.req
		sp.ErrorCode = 0
		// An empty record set, never a null one: librdkafka rejects a null set (length -1).
		sp.RecordBatches = emptyRecords
		// The high watermark is read once: the response reports it and serves nothing at or
		// above it (a read_committed consumer nothing at or above the last stable offset),
		// although appends may move the log end meanwhile.
		hw := fp.p.HighWatermark()
		lso := fp.p.LastStableOffset(hw)
		sp.HighWatermark = hw
		sp.LastStableOffset = lso
		sp.LogStartOffset = fp.p.Log().LogStartOffset()
		sp.AbortedTransactions = nil
		switch {
		case fp.follower:
			// A follower reads up to the log end: what it fetches is what commits.
			fp.leaderEnd = fp.p.Log().LogEndOffset()
			hw = fp.leaderEnd
		case fp.committed:
			hw = lso
			sp.AbortedTransactions = abortedTransactions(fp.p, rp.FetchOffset, lso)
		}
		if fp.held {
			continue // over the leader's replication throttle: nothing for this replica now
		}
		limit := int(rp.PartitionMaxBytes)
		if remaining := maxBytes - total; remaining < limit {
			limit = remaining
		}
		if limit <= 0 && total > 0 {
			continue
		}
		if limit < 0 {
			limit = 0
		}
		if regions != nil {
			r, ok, err := fp.p.ReadRegion(rp.FetchOffset, limit, hw, total == 0)
			if err == nil && ok {
				regions[sp] = &r
				bufs.regions = append(bufs.regions, &r)
				total += int(r.Len)
				continue
			}
			if err != nil {
				sp.ErrorCode = errCode(storageErr(err))
				anyErr = true
				continue
			}
		}
		data, err := fp.p.ReadWith(bufs.alloc, rp.FetchOffset, limit, hw, total == 0)
		if err != nil {
			sp.ErrorCode = errCode(storageErr(err))
			anyErr = true
			continue
		}
		if len(data) > 0 {
			sp.RecordBatches = data
		}
		total += len(data)
	}
	return total, anyErr
}

// abortedTransactions lists the aborted transactions a read_committed consumer fetching
// from offset below lso must drop (never nil: an empty list, as Kafka sends). The upper bound
// is the last stable offset rather than the end of the bytes read, so the list may name
// transactions beyond them, which clients ignore.
func abortedTransactions(p *replica.Partition, offset, lso int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	if offset >= lso {
		return out
	}
	for _, a := range p.Log().AbortedTransactions(offset, lso) {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		out = append(out, at)
	}
	return out
}

// waitAny blocks until one of the partition channels fires (true) or done/timeout (false).
func waitAny(done <-chan struct{}, timeout <-chan time.Time, waits []<-chan struct{}) bool {
	if len(waits) == 1 {
		select {
		case <-waits[0]:
			return true
		case <-done:
		case <-timeout:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(waits)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)})
	for _, w := range waits {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}

// checkLeaderEpoch compares a client's current leader epoch (-1: no check) with ours.
func checkLeaderEpoch(clientEpoch, ours int32) *kerr.Error {
	switch {
	case clientEpoch < 0 || clientEpoch == ours:
		return nil
	case clientEpoch > ours:
		return kerr.UnknownLeaderEpoch
	default:
		return kerr.FencedLeaderEpoch
	}
}

// followerFetchPartition resolves a partition for a follower's fetch, with Kafka's checks in
// its order: the leader epoch, leadership, then that the fetching broker is a replica.
func (b *Broker) followerFetchPartition(topic string, rp *kmsg.FetchRequestTopicPartition, replicaID int32) (*replica.Partition, *kerr.Error) {
	p := b.replicas.Partition(topic, rp.Partition)
	if p == nil {
		return nil, b.unopenedErr(topic, rp.Partition)
	}
	if err := p.CheckFollowerFetch(replicaID, rp.CurrentLeaderEpoch); err != nil {
		return nil, replicaErr(err)
	}
	return p, nil
}
