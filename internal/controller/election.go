package controller

import (
	"slices"
	"strings"

	"github.com/samsa-io/samsa/internal/metadata"
)

// This file holds the pure leader-election and ISR functions, after Kafka's
// PartitionChangeBuilder and ReplicationControlManager.generateLeaderAndIsrUpdates. They read an
// image and return PartitionChange records; they do no I/O and depend on nothing but their
// arguments.

// uncleanLeaderElectionConfig is the topic config (and broker default) allowing a leader from
// outside the ISR.
const uncleanLeaderElectionConfig = "unclean.leader.election.enable"

// electionKind says which leaders an election may choose, as Kafka's
// PartitionChangeBuilder.Election.
type electionKind int8

const (
	// electOnline keeps a valid current leader, else takes the first acceptable ISR member in
	// replica order.
	electOnline electionKind = iota
	// electPreferred takes the first replica if it is an acceptable ISR member; else behaves
	// like electOnline.
	electPreferred
	// electUnclean is electOnline, then, with no acceptable ISR member, the first acceptable
	// replica (outside the ISR: an unclean election, which may lose acknowledged data).
	electUnclean
)

// electLeader chooses the leader of p when its ISR becomes isr. acceptable reports whether a
// broker may lead (registered, unfenced, not in controlled shutdown). It returns the leader
// (metadata.NoLeader if none) and whether it was chosen from outside the ISR.
func electLeader(p metadata.Partition, isr []int32, kind electionKind, acceptable func(int32) bool) (leader int32, unclean bool) {
	valid := func(id int32) bool { return slices.Contains(isr, id) && acceptable(id) }
	if kind == electPreferred && len(p.Replicas) > 0 && valid(p.Replicas[0]) {
		return p.Replicas[0], false
	}
	if p.Leader != metadata.NoLeader && valid(p.Leader) {
		return p.Leader, false
	}
	for _, r := range p.Replicas {
		if valid(r) {
			return r, false
		}
	}
	if kind == electUnclean {
		for _, r := range p.Replicas {
			if acceptable(r) {
				return r, true
			}
		}
	}
	return metadata.NoLeader, false
}

// changePartition builds the record that gives p the ISR isr and the leader an election of
// kind chooses; ok is false when nothing would change. An unclean election makes the new leader
// the only ISR member (as Kafka). isr must not be empty.
func changePartition(topicID metadata.UUID, p metadata.Partition, isr []int32, kind electionKind, acceptable func(int32) bool) (metadata.PartitionChange, bool) {
	leader, unclean := electLeader(p, isr, kind, acceptable)
	if unclean {
		isr = []int32{leader}
	}
	rec := metadata.PartitionChange{TopicID: topicID, Partition: p.Partition}
	if leader != p.Leader {
		rec.Leader = &leader
	}
	if !slices.Equal(isr, p.ISR) {
		rec.ISR = slices.Clone(isr)
	}
	return rec, rec.Leader != nil || rec.ISR != nil
}

// activeIn returns the acceptable-leader test of img's brokers: registered and Active.
func activeIn(img *metadata.Image) func(int32) bool {
	return func(id int32) bool {
		b, ok := img.Brokers[id]
		return ok && b.Active()
	}
}

// parseBool reads a boolean config value as Kafka does (case-insensitive "true").
func parseBool(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// uncleanAllowed reports whether topic t allows unclean leader election: its own config, else
// the cluster-wide dynamic broker default, else def (the static broker setting).
func uncleanAllowed(img *metadata.Image, t *metadata.Topic, def bool) bool {
	if v, ok := t.Configs[uncleanLeaderElectionConfig]; ok {
		return parseBool(v)
	}
	if v, ok := img.BrokerConfig("")[uncleanLeaderElectionConfig]; ok {
		return parseBool(v)
	}
	return def
}

// onlineKind is the election kind after a broker change for topic t: unclean when allowed.
func onlineKind(img *metadata.Image, t *metadata.Topic, uncleanDefault bool) electionKind {
	if uncleanAllowed(img, t, uncleanDefault) {
		return electUnclean
	}
	return electOnline
}

// removeBrokerChanges returns the changes that take broker id out of every partition's
// leadership and ISR, for fencing it or its controlled shutdown (Kafka's handleBrokerFenced and
// handleBrokerInControlledShutdown): id leaves each ISR it is in unless it is the last member
// (the ISR never becomes empty; the partition then has no leader), and partitions it led get a
// new leader elected among the other acceptable brokers. The changes are in topic-name and
// partition order.
func removeBrokerChanges(img *metadata.Image, id int32, uncleanDefault bool) []metadata.PartitionChange {
	active := activeIn(img)
	acceptable := func(b int32) bool { return b != id && active(b) }
	var out []metadata.PartitionChange
	for _, t := range sortedTopics(img) {
		kind := onlineKind(img, t, uncleanDefault)
		for _, p := range t.Partitions {
			inISR := slices.Contains(p.ISR, id)
			if !inISR && p.Leader != id {
				continue
			}
			isr := p.ISR
			if inISR && len(p.ISR) > 1 {
				isr = slices.DeleteFunc(slices.Clone(p.ISR), func(b int32) bool { return b == id })
			}
			if rec, ok := changePartition(t.ID, p, isr, kind, acceptable); ok {
				out = append(out, rec)
			}
		}
	}
	return out
}

// unfenceBrokerChanges returns the elections that become possible when broker id is unfenced
// (Kafka's handleBrokerUnfenced): every leaderless partition that id replicates elects a leader,
// id now counting as acceptable.
func unfenceBrokerChanges(img *metadata.Image, id int32, uncleanDefault bool) []metadata.PartitionChange {
	active := activeIn(img)
	acceptable := func(b int32) bool { return b == id || active(b) }
	var out []metadata.PartitionChange
	for _, t := range sortedTopics(img) {
		kind := onlineKind(img, t, uncleanDefault)
		for _, p := range t.Partitions {
			if p.Leader != metadata.NoLeader || !slices.Contains(p.Replicas, id) {
				continue
			}
			if rec, ok := changePartition(t.ID, p, p.ISR, kind, acceptable); ok {
				out = append(out, rec)
			}
		}
	}
	return out
}

// sortedTopics returns img's topics by name, so that record order is deterministic.
func sortedTopics(img *metadata.Image) []*metadata.Topic {
	out := make([]*metadata.Topic, 0, len(img.Topics))
	for _, name := range img.TopicNames() {
		out = append(out, img.Topics[name])
	}
	return out
}
