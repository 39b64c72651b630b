package broker

import (
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/replica"
)

// Helpers of the replicated data path shared by Produce, Fetch and the offset APIs: the
// replica package's errors as Kafka codes, and KIP-951's leader hints (CurrentLeader and the
// leaders' endpoints) in answers to clients that reached a broker that does not lead.

// replicaErr maps the replica package's errors to Kafka errors.
func replicaErr(err error) *kerr.Error {
	switch {
	case errors.Is(err, replica.ErrNotLeader), errors.Is(err, replica.ErrNotReplica):
		return kerr.NotLeaderForPartition
	case errors.Is(err, replica.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch
	case errors.Is(err, replica.ErrUnknownLeaderEpoch):
		return kerr.UnknownLeaderEpoch
	case errors.Is(err, replica.ErrNotEnoughReplicasAfterAppend):
		return kerr.NotEnoughReplicasAfterAppend
	case errors.Is(err, replica.ErrReplicationTimeout):
		return kerr.RequestTimedOut
	}
	return nil
}

// leaderHints collects the leaders named in CurrentLeader fields, for the response's
// NodeEndpoints.
type leaderHints struct{ ids []int32 }

// note returns the partition's leader and leader epoch from the image and remembers the
// leader; -1, -1 when unknown.
func (h *leaderHints) note(img *metadata.Image, t *metadata.Topic, partition int32) (leader, epoch int32) {
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return -1, -1
	}
	mp := &t.Partitions[partition]
	if mp.Leader < 0 {
		return -1, -1
	}
	if !slices.Contains(h.ids, mp.Leader) {
		h.ids = append(h.ids, mp.Leader)
	}
	return mp.Leader, mp.LeaderEpoch
}

type endpoint struct {
	host string
	port int32
	rack *string
}

// brokerEndpoint returns a broker's endpoint on the given listener.
func brokerEndpoint(img *metadata.Image, id int32, listener string) (endpoint, bool) {
	br, ok := img.Brokers[id]
	if !ok {
		return endpoint{}, false
	}
	for _, ep := range br.Endpoints {
		if ep.Listener == listener {
			e := endpoint{host: ep.Host, port: ep.Port}
			if br.Rack != "" {
				rack := br.Rack
				e.rack = &rack
			}
			return e, true
		}
	}
	return endpoint{}, false
}
