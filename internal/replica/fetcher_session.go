package replica

import (
	"maps"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A fetcher's side of its fetch session with the leader (KIP-227; Kafka's
// FetchSessionHandler, which Kafka's replica fetchers use too). The first fetch is full (epoch
// 0) and opens a session; then each fetch names only the partitions that joined or whose fetch
// parameters changed (fetch offset, log start, leader epoch, ...) and forgets those that left
// (backing off, truncating, gone). The leader fetches every partition of the session at the
// parameters last named and counts each as fetched there, so a follower whose log end did not
// move still advances the high watermark and stays in the ISR without naming the partition.
// Any error (a session error, a failed request) makes the next fetch full again: with the old
// session's id when the leader may still hold it, which closes that session.

// sessionPartition is what a fetch tells the leader about one partition.
type sessionPartition struct {
	topicID        [16]byte
	fetchOffset    int64
	logStartOffset int64
	maxBytes       int32
	leaderEpoch    int32
}

// fetchSessionClient is owned by its fetcher's goroutine.
type fetchSessionClient struct {
	id    int32
	epoch int32 // 0: the next fetch is full
	// parts is the session as the leader holds it once it has the last fetch built.
	parts map[TopicPartition]sessionPartition
}

// forgottenPartition is a partition the next fetch drops from the session.
type forgottenPartition struct {
	tp      TopicPartition
	topicID [16]byte
}

// sessionFetch is what build decided for one fetch.
type sessionFetch struct {
	id, epoch int32
	full      bool
	send      []TopicPartition // the partitions the request names
	forget    []forgottenPartition
}

// build plans the next fetch of want, every partition to fetch now with its parameters.
func (s *fetchSessionClient) build(want map[TopicPartition]sessionPartition) sessionFetch {
	for tp, prev := range s.parts {
		if w, ok := want[tp]; ok && w.topicID != prev.topicID {
			s.epoch = 0 // the topic was recreated: start over rather than rename in place
			break
		}
	}
	f := sessionFetch{id: s.id, epoch: s.epoch, full: s.epoch == 0}
	if f.full {
		s.parts = maps.Clone(want)
		for tp := range want {
			f.send = append(f.send, tp)
		}
		return f
	}
	for tp, prev := range s.parts {
		switch w, ok := want[tp]; {
		case !ok:
			delete(s.parts, tp)
			f.forget = append(f.forget, forgottenPartition{tp, prev.topicID})
		case w != prev:
			s.parts[tp] = w
			f.send = append(f.send, tp)
		}
	}
	for tp, w := range want {
		if _, ok := s.parts[tp]; !ok {
			s.parts[tp] = w
			f.send = append(f.send, tp)
		}
	}
	return f
}

// handleResponse takes the answer to f and reports whether its partitions may be used. A
// session error makes the next fetch full.
func (s *fetchSessionClient) handleResponse(f sessionFetch, resp *kmsg.FetchResponse) bool {
	switch kerr.ErrorForCode(resp.ErrorCode) {
	case nil:
	case kerr.FetchSessionIDNotFound:
		s.id, s.epoch = 0, 0
		return false
	default: // INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR, ...: close it, start over
		s.epoch = 0
		return false
	}
	switch {
	case resp.SessionID == 0:
		// No session (a full fetch the leader had no room for, or one it ended): fetch in
		// full next time.
		s.id, s.epoch = 0, 0
	case f.full:
		s.id, s.epoch = resp.SessionID, 1
	case resp.SessionID != s.id:
		s.epoch = 0
		return false
	default:
		s.epoch = nextEpoch(s.epoch)
	}
	return true
}

// handleError takes a fetch that got no answer: the leader may or may not have applied it, so
// the next fetch is full (closing the session).
func (s *fetchSessionClient) handleError() { s.epoch = 0 }

// nextEpoch is Kafka's FetchMetadata.nextEpoch: 1 follows the largest epoch.
func nextEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}
