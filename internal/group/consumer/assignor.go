package consumer

import (
	"slices"
	"sort"
)

// The server-side assignors, as ConsumerGroupHeartbeat's ServerAssignor names them.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// assignorMember is one member as an assignor sees it.
type assignorMember struct {
	id         string
	instanceID string
	topics     []TopicID  // subscribed topics that exist, sorted
	current    Assignment // the member's current target assignment
}

// assignFunc computes a target assignment: members sorted by id, partition counts by topic.
// It must be deterministic, give every partition of a subscribed topic to exactly one
// member subscribed to that topic, and return an entry (possibly empty) for every member.
type assignFunc func(members []assignorMember, partitions map[TopicID]int32) map[string]Assignment

func assignorFor(name string) assignFunc {
	switch name {
	case AssignorRange:
		return rangeAssign
	case AssignorUniform:
		return uniformAssign
	}
	return nil
}

type topicPartition struct {
	topic     TopicID
	partition int32
}

// uniformAssign spreads the partitions so that the members' partition counts differ by at
// most one where their subscriptions allow it, keeping each member's current partitions
// where possible (a sticky assignment, like Kafka's UniformAssignor).
func uniformAssign(members []assignorMember, partitions map[TopicID]int32) map[string]Assignment {
	owned := make(map[string][]topicPartition, len(members))
	subscribed := make(map[string]map[TopicID]bool, len(members))
	taken := make(map[topicPartition]bool)
	for _, m := range members {
		subs := make(map[TopicID]bool, len(m.topics))
		for _, t := range m.topics {
			if _, ok := partitions[t]; ok {
				subs[t] = true
			}
		}
		subscribed[m.id] = subs
	}
	// Keep the current partitions that are still valid and not claimed by an earlier member.
	for _, m := range members {
		for _, t := range m.current.topics() {
			if !subscribed[m.id][t] {
				continue
			}
			for _, p := range m.current[t] {
				tp := topicPartition{t, p}
				if p < partitions[t] && !taken[tp] {
					taken[tp] = true
					owned[m.id] = append(owned[m.id], tp)
				}
			}
		}
	}
	// Give each free partition to the least loaded member subscribed to its topic.
	topics := make([]TopicID, 0, len(partitions))
	for t := range partitions {
		topics = append(topics, t)
	}
	sortTopicIDs(topics)
	for _, t := range topics {
		for p := int32(0); p < partitions[t]; p++ {
			tp := topicPartition{t, p}
			if taken[tp] {
				continue
			}
			best := ""
			for _, m := range members {
				if subscribed[m.id][t] && (best == "" || len(owned[m.id]) < len(owned[best])) {
					best = m.id
				}
			}
			if best != "" {
				taken[tp] = true
				owned[best] = append(owned[best], tp)
			}
		}
	}
	// Move partitions from the most to the least loaded members while two members that could
	// trade differ by more than one. Every move lowers the sum of squared counts, so this ends.
	for {
		byLoad := slices.Clone(members)
		sort.SliceStable(byLoad, func(i, j int) bool { return len(owned[byLoad[i].id]) > len(owned[byLoad[j].id]) })
		moved := false
	search:
		for _, donor := range byLoad {
			for i := len(byLoad) - 1; i >= 0; i-- {
				receiver := byLoad[i]
				if len(owned[donor.id])-len(owned[receiver.id]) <= 1 {
					break
				}
				// The donor's last movable partition in (topic, partition) order.
				list := owned[donor.id]
				sortTPs(list)
				for k := len(list) - 1; k >= 0; k-- {
					if subscribed[receiver.id][list[k].topic] {
						owned[receiver.id] = append(owned[receiver.id], list[k])
						owned[donor.id] = append(list[:k:k], list[k+1:]...)
						moved = true
						break search
					}
				}
			}
		}
		if !moved {
			break
		}
	}
	out := make(map[string]Assignment, len(members))
	for _, m := range members {
		a := make(Assignment)
		for _, tp := range owned[m.id] {
			a[tp.topic] = append(a[tp.topic], tp.partition)
		}
		out[m.id] = a.normalized()
	}
	return out
}

func sortTPs(l []topicPartition) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].topic != l[j].topic {
			return lessID(l[i].topic, l[j].topic)
		}
		return l[i].partition < l[j].partition
	})
}

func lessID(a, b TopicID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// rangeAssign assigns each topic's partitions in contiguous ranges to the members subscribed
// to it, in member order (static members by instance id, then dynamic members by member id),
// the first members getting one more partition when the count does not divide evenly. Topics
// with the same partition count are therefore co-partitioned. Members keep current
// partitions up to their quota, like Kafka's server-side RangeAssignor.
func rangeAssign(members []assignorMember, partitions map[TopicID]int32) map[string]Assignment {
	ordered := slices.Clone(members)
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i], ordered[j]
		if (a.instanceID != "") != (b.instanceID != "") {
			return a.instanceID != ""
		}
		if a.instanceID != b.instanceID {
			return a.instanceID < b.instanceID
		}
		return a.id < b.id
	})
	out := make(map[string]Assignment, len(members))
	for _, m := range members {
		out[m.id] = make(Assignment)
	}
	topics := make([]TopicID, 0, len(partitions))
	for t := range partitions {
		topics = append(topics, t)
	}
	sortTopicIDs(topics)
	for _, t := range topics {
		n := partitions[t]
		var subs []assignorMember
		for _, m := range ordered {
			if slices.Contains(m.topics, t) {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 || n == 0 {
			continue
		}
		minQuota := int(n) / len(subs)
		extra := int(n) % len(subs)
		taken := make([]bool, n)
		got := make(map[string][]int32, len(subs))
		// Keep current partitions: up to the minimum quota, or one more while extras last.
		for _, m := range subs {
			for _, p := range m.current[t] {
				if p >= n || taken[p] {
					continue
				}
				k := len(got[m.id])
				if k < minQuota || (k == minQuota && extra > 0) {
					if k == minQuota {
						extra--
					}
					taken[p] = true
					got[m.id] = append(got[m.id], p)
				}
			}
		}
		// Fill the quotas from the free partitions in order.
		next := int32(0)
		for _, m := range subs {
			want := minQuota
			k := len(got[m.id])
			if k > minQuota {
				continue
			}
			if extra > 0 {
				want++
				extra--
			}
			for ; k < want; k++ {
				for taken[next] {
					next++
				}
				taken[next] = true
				got[m.id] = append(got[m.id], next)
			}
		}
		for id, ps := range got {
			out[id][t] = ps
		}
	}
	for id, a := range out {
		out[id] = a.normalized()
	}
	return out
}
