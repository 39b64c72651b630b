package consumer

import (
	"encoding/binary"
	"hash/fnv"
	"regexp"
	"slices"
	"sort"
)

// TopicID is a topic's UUID.
type TopicID [16]byte

// Topic is what the state machine knows of one topic.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
}

// topicView is an immutable index of the cluster's topics.
type topicView struct {
	byName map[string]Topic
	byID   map[TopicID]Topic
	names  []string // sorted
}

func newTopicView(topics []Topic) *topicView {
	v := &topicView{byName: make(map[string]Topic, len(topics)), byID: make(map[TopicID]Topic, len(topics))}
	for _, t := range topics {
		if t.Name == "" || t.Partitions < 0 {
			continue
		}
		v.byName[t.Name] = t
		v.byID[t.ID] = t
		v.names = append(v.names, t.Name)
	}
	sort.Strings(v.names)
	v.names = slices.Compact(v.names)
	return v
}

// compileRegex compiles a subscription regular expression. Kafka matches RE2/J patterns
// against the whole topic name.
func compileRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// resolve returns the names of the topics a regular expression matches, sorted.
func (v *topicView) resolve(re *regexp.Regexp) []string {
	var out []string
	for _, n := range v.names {
		if re.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}

// metadataHash hashes the name, id and partition count of the given topics that exist, in
// name order. A change of the hash of a group's subscribed topics bumps the group epoch.
func (v *topicView) metadataHash(names []string) int64 {
	h := fnv.New64a()
	var buf [4]byte
	for _, n := range names {
		t, ok := v.byName[n]
		if !ok {
			continue
		}
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(t.ID[:])
		binary.BigEndian.PutUint32(buf[:], uint32(t.Partitions))
		h.Write(buf[:])
	}
	return int64(h.Sum64())
}
