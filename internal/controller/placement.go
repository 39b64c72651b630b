package controller

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file places the replicas of new partitions (CreateTopics, CreatePartitions without an
// explicit assignment). Like Kafka's StripedReplicaPlacer it spreads each partition's replicas
// over racks and the leaders evenly over brokers, and only places on usable brokers (unfenced,
// not in controlled shutdown). Unlike Kafka's, which shuffles with a random source, it is
// deterministic: the placement is a function of the brokers and a start offset (the cluster's
// partition count, so that consecutive topics do not all start on the same broker).

// placementError is Kafka's INVALID_REPLICATION_FACTOR answer when rf replicas cannot be placed
// on the usable brokers ("Unable to replicate the partition N time(s): ...").
func placementError(rf int16, usable int) error {
	if usable == 0 {
		return fmt.Errorf("%w: Unable to replicate the partition %d time(s): All brokers are currently fenced.", kerr.InvalidReplicationFactor, rf)
	}
	return fmt.Errorf("%w: Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.",
		kerr.InvalidReplicationFactor, rf, rf, usable)
}

// rackAlternated orders brokers so that consecutive entries are on different racks where
// possible: racks sorted by name, brokers in a rack by ID, then the first broker of every rack,
// the second of every rack, and so on. Brokers without a rack share the rack "".
func rackAlternated(brokers []metadata.Broker) []metadata.Broker {
	byRack := make(map[string][]metadata.Broker)
	for _, b := range brokers {
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	racks := make([]string, 0, len(byRack))
	for r, bs := range byRack {
		racks = append(racks, r)
		slices.SortFunc(bs, func(a, b metadata.Broker) int { return cmp.Compare(a.ID, b.ID) })
	}
	slices.Sort(racks)
	out := make([]metadata.Broker, 0, len(brokers))
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

// placeReplicas returns the replica lists of count partitions of rf replicas each on brokers
// (which must all be usable), the first replica being the leader. Partition k's leader is the
// (start+k)-th broker of the rack-alternated order, so leaders rotate over brokers and racks;
// its followers are taken from the brokers after it in that order, rotated by a shift that grows
// every full round so that follower sets vary, preferring brokers on racks the partition does
// not use yet. The error is placementError's.
func placeReplicas(brokers []metadata.Broker, count int32, rf int16, start int) ([][]int32, error) {
	if rf <= 0 || int(rf) > len(brokers) {
		return nil, placementError(rf, len(brokers))
	}
	order := rackAlternated(brokers)
	n := len(order)
	numRacks := 0
	seenRack := make(map[string]bool)
	for _, b := range order {
		if !seenRack[b.Rack] {
			seenRack[b.Rack] = true
			numRacks++
		}
	}
	out := make([][]int32, count)
	others := make([]metadata.Broker, 0, n)
	for k := range out {
		c := start + k
		leader := c % n
		shift := 0
		if n > 1 {
			shift = (c / n) % (n - 1)
		}
		others = others[:0]
		for m := range n - 1 {
			others = append(others, order[(leader+1+(shift+m)%(n-1))%n])
		}
		replicas := make([]int32, 1, rf)
		replicas[0] = order[leader].ID
		usedRacks := map[string]bool{order[leader].Rack: true}
		taken := make([]bool, len(others))
		for len(replicas) < int(rf) {
			pick := -1
			for i, b := range others {
				if !taken[i] && (!usedRacks[b.Rack] || len(usedRacks) == numRacks) {
					pick = i
					break
				}
			}
			taken[pick] = true
			replicas = append(replicas, others[pick].ID)
			usedRacks[others[pick].Rack] = true
		}
		out[k] = replicas
	}
	return out, nil
}

// usableBrokers returns the brokers new replicas may be placed on: unfenced and not in
// controlled shutdown, by ID.
func usableBrokers(img *metadata.Image) []metadata.Broker {
	var out []metadata.Broker
	for _, id := range img.BrokerIDs() {
		if b := img.Brokers[id]; b.Active() {
			out = append(out, b)
		}
	}
	return out
}
