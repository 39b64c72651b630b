package consumer

import (
	"bytes"
	"slices"
	"sort"
)

// Assignment maps topic ids to partitions. A normalized assignment (every Assignment the
// state machine stores) has sorted, duplicate-free partition lists and no empty list.
type Assignment map[TopicID][]int32

// normalized returns a normalized copy of a.
func (a Assignment) normalized() Assignment {
	out := make(Assignment, len(a))
	for t, ps := range a {
		if len(ps) == 0 {
			continue
		}
		c := slices.Clone(ps)
		slices.Sort(c)
		out[t] = slices.Compact(c)
	}
	return out
}

func (a Assignment) clone() Assignment {
	out := make(Assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

// equal reports whether two normalized assignments hold the same partitions.
func (a Assignment) equal(b Assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

func (a Assignment) has(t TopicID, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

// count is the number of partitions.
func (a Assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// topics returns the topic ids in increasing byte order.
func (a Assignment) topics() []TopicID {
	ts := make([]TopicID, 0, len(a))
	for t := range a {
		ts = append(ts, t)
	}
	sortTopicIDs(ts)
	return ts
}

func sortTopicIDs(ts []TopicID) {
	sort.Slice(ts, func(i, j int) bool { return bytes.Compare(ts[i][:], ts[j][:]) < 0 })
}

// intersect returns the partitions of sorted list a that are in sorted list b.
func intersect(a, b []int32) []int32 {
	var out []int32
	for _, p := range a {
		if _, ok := slices.BinarySearch(b, p); ok {
			out = append(out, p)
		}
	}
	return out
}

// subtract returns the partitions of sorted list a that are not in sorted list b.
func subtract(a, b []int32) []int32 {
	var out []int32
	for _, p := range a {
		if _, ok := slices.BinarySearch(b, p); !ok {
			out = append(out, p)
		}
	}
	return out
}

// union returns the sorted union of two sorted lists.
func union(a, b []int32) []int32 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// TopicPartitions is one topic's partitions of an assignment, as heartbeats carry them.
type TopicPartitions struct {
	TopicID    TopicID
	Partitions []int32
}

// list returns the assignment as a list in topic id order.
func (a Assignment) list() []TopicPartitions {
	out := make([]TopicPartitions, 0, len(a))
	for _, t := range a.topics() {
		out = append(out, TopicPartitions{TopicID: t, Partitions: slices.Clone(a[t])})
	}
	return out
}
