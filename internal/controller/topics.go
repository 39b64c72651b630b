package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// maxTopicNameLength is Kafka's limit on topic name length.
const maxTopicNameLength = 249

// maxPartitions caps the partition count of one topic, so that one request cannot make the
// controller build a log entry of unbounded size.
const maxPartitions = 100_000

// maxPartitionsPerCreate caps the partitions one CreateTopics request may create in all, as
// Kafka's MAX_PARTITIONS_PER_BATCH does (KAFKA-17870): past it the whole request fails with
// POLICY_VIOLATION, whatever its topics.
const maxPartitionsPerCreate = 10_000

// errTooManyPartitions is Kafka's answer to a CreateTopics request over maxPartitionsPerCreate.
var errTooManyPartitions = fmt.Errorf("%w: Excessively large number of partitions per request.", kerr.PolicyViolation)

// RequestedPartitions is how many partitions reqs ask for, counted as Kafka does: the
// assignments when given, else the partition count, the default for -1.
func RequestedPartitions(reqs []CreateTopic, defaultPartitions int32) int64 {
	var total int64
	for _, req := range reqs {
		switch {
		case len(req.Assignments) > 0:
			total += int64(len(req.Assignments))
		case req.NumPartitions == -1:
			total += int64(defaultPartitions)
		default:
			total += int64(req.NumPartitions)
		}
	}
	return total
}

// CreateTopic is one topic to create.
type CreateTopic struct {
	Name string
	// NumPartitions is the partition count; -1 means Config.DefaultPartitions.
	NumPartitions int32
	// ReplicationFactor is the replica count; -1 means Config.DefaultReplicationFactor.
	ReplicationFactor int16
	// Assignments optionally assigns replicas by hand: partition -> broker IDs, the first being
	// the preferred leader. Partitions must be 0..n-1. If set, NumPartitions and
	// ReplicationFactor must be -1.
	Assignments map[int32][]int32
	Configs     map[string]string
}

// TopicResult is the outcome of creating one topic. Err wraps a *kerr.Error (see ErrorCode)
// and carries a message for the response's ErrorMessage.
type TopicResult struct {
	Name string
	// ID is the new topic's ID; zero when Err is set or the request was validate-only.
	ID                metadata.UUID
	NumPartitions     int32
	ReplicationFactor int16
	Err               error
}

// DeleteResult is the outcome of deleting one topic. Name and ID are filled in from the image
// when the topic was found.
type DeleteResult struct {
	Name string
	ID   metadata.UUID
	Err  error
}

// ValidateTopicName checks Kafka's rules for topic names: 1 to 249 characters of
// [a-zA-Z0-9._-], and not "." or "..". The error wraps kerr.InvalidTopicException.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is illegal, it can't be empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be %q", kerr.InvalidTopicException, name)
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("%w: topic name is illegal, it can't be longer than %d characters", kerr.InvalidTopicException, maxTopicNameLength)
	}
	for _, ch := range []byte(name) {
		legal := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '.' || ch == '_' || ch == '-'
		if !legal {
			return fmt.Errorf("%w: topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", kerr.InvalidTopicException, name)
		}
	}
	return nil
}

// collisionKey is the form in which two topic names collide in Kafka: '.' and '_' are
// interchangeable in metric names, so "a.b" and "a_b" may not both exist.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// CreateTopics creates topics. Each request gets a result in the same position. The topics
// that pass validation are committed together as one log entry. With validateOnly nothing is
// committed, but the results are what a real request would have produced.
func (c *Controller) CreateTopics(ctx context.Context, reqs []CreateTopic, validateOnly bool) []TopicResult {
	results := make([]TopicResult, len(reqs))
	for i, req := range reqs {
		results[i].Name = req.Name
	}
	if RequestedPartitions(reqs, c.cfg.DefaultPartitions) > maxPartitionsPerCreate {
		for i := range results {
			results[i].Err = errTooManyPartitions
		}
		return results
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}

	img := c.Image()
	p := newPlanner(img)
	seen := make(map[string]int, len(reqs))
	for _, req := range reqs {
		seen[req.Name]++
	}
	colliding := make(map[string]string, len(img.Topics)+len(reqs))
	for name := range img.Topics {
		colliding[collisionKey(name)] = name
	}

	var recs []metadata.Record
	var planned []int
	budget := c.newBudget(img)
	for i, req := range reqs {
		res := &results[i]
		if seen[req.Name] > 1 {
			res.Err = fmt.Errorf("%w: topic %q appears more than once in the request", kerr.InvalidRequest, req.Name)
			continue
		}
		rec, err := c.planTopic(img, p, req, colliding)
		if err == nil {
			err = budget.take(rec.Partitions)
		}
		if err != nil {
			res.Err = err
			continue
		}
		colliding[collisionKey(req.Name)] = req.Name
		res.NumPartitions = int32(len(rec.Partitions))
		res.ReplicationFactor = int16(len(rec.Partitions[0].Replicas))
		if !validateOnly {
			res.ID = rec.ID
			recs = append(recs, rec)
			planned = append(planned, i)
		}
	}
	if len(recs) == 0 {
		return results
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		for _, i := range planned {
			results[i].ID = metadata.UUID{}
			results[i].Err = err
		}
		return results
	}
	c.logger.Info("created topics", "count", len(recs))
	return results
}

// planTopic validates one request against img and builds its CreateTopic record.
func (c *Controller) planTopic(img *metadata.Image, p *planner, req CreateTopic, colliding map[string]string) (metadata.CreateTopic, error) {
	var rec metadata.CreateTopic
	if err := ValidateTopicName(req.Name); err != nil {
		return rec, err
	}
	if _, ok := img.Topic(req.Name); ok {
		return rec, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, req.Name)
	}
	if other, ok := colliding[collisionKey(req.Name)]; ok {
		return rec, fmt.Errorf("%w: topic %q collides with existing topic %q", kerr.InvalidTopicException, req.Name, other)
	}

	var partitions []metadata.Partition
	if len(req.Assignments) > 0 {
		if req.NumPartitions != -1 || req.ReplicationFactor != -1 {
			return rec, fmt.Errorf("%w: both a replica assignment and a partition count or replication factor were given", kerr.InvalidRequest)
		}
		if len(req.Assignments) > maxPartitions {
			return rec, fmt.Errorf("%w: number of partitions %d exceeds the limit of %d", kerr.InvalidPartitions, len(req.Assignments), maxPartitions)
		}
		lists := make([][]int32, len(req.Assignments))
		for part, replicas := range req.Assignments {
			if part < 0 || int(part) >= len(lists) {
				return rec, fmt.Errorf("%w: partitions must be numbered 0 to %d, got %d", kerr.InvalidReplicaAssignment, len(lists)-1, part)
			}
			lists[part] = replicas
		}
		if err := p.checkAssignment(lists, 0); err != nil {
			return rec, err
		}
		partitions = p.assigned(lists, 0)
	} else {
		numPartitions, rf := req.NumPartitions, req.ReplicationFactor
		if numPartitions == -1 {
			numPartitions = c.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = c.cfg.DefaultReplicationFactor
		}
		if numPartitions <= 0 {
			return rec, fmt.Errorf("%w: number of partitions must be larger than 0, got %d", kerr.InvalidPartitions, numPartitions)
		}
		if numPartitions > maxPartitions {
			return rec, fmt.Errorf("%w: number of partitions %d exceeds the limit of %d", kerr.InvalidPartitions, numPartitions, maxPartitions)
		}
		if rf <= 0 {
			return rec, fmt.Errorf("%w: replication factor must be larger than 0, got %d", kerr.InvalidReplicationFactor, rf)
		}
		if err := p.checkReplicationFactor(rf); err != nil {
			return rec, err
		}
		partitions = p.place(numPartitions, rf, 0)
	}

	if err := validateConfigs(c.cfg.ValidateTopicConfig, req.Configs); err != nil {
		return rec, err
	}
	rec = metadata.CreateTopic{
		Name:       req.Name,
		ID:         p.newTopicID(),
		Partitions: partitions,
		Configs:    maps.Clone(req.Configs),
	}
	return rec, nil
}

// validateConfigs runs validate (if any) over configs in key order, so the error is stable.
func validateConfigs(validate func(name, value string) error, configs map[string]string) error {
	if validate == nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if err := validate(k, configs[k]); err != nil {
			return fmt.Errorf("%w: %w", kerr.InvalidConfig, err) // the error names the value and the config
		}
	}
	return nil
}

// DeleteTopics deletes topics by name and by ID. Results hold the names first, then the IDs,
// each in request order. The topics found are deleted together as one log entry.
func (c *Controller) DeleteTopics(ctx context.Context, names []string, ids [][16]byte) []DeleteResult {
	results := make([]DeleteResult, 0, len(names)+len(ids))
	for _, name := range names {
		results = append(results, DeleteResult{Name: name})
	}
	for _, id := range ids {
		results = append(results, DeleteResult{ID: id})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}

	img := c.Image()
	nameCount := make(map[string]int, len(names))
	for _, name := range names {
		nameCount[name]++
	}
	idCount := make(map[metadata.UUID]int, len(ids))
	for _, id := range ids {
		idCount[id]++
	}
	var recs []metadata.Record
	var pending []int
	deleting := make(map[metadata.UUID]bool)
	for i := range results {
		res := &results[i]
		byName := i < len(names)
		var t *metadata.Topic
		var ok bool
		switch {
		case byName && nameCount[res.Name] > 1:
			res.Err = fmt.Errorf("%w: duplicate topic name %q", kerr.InvalidRequest, res.Name)
			continue
		case !byName && idCount[res.ID] > 1:
			res.Err = fmt.Errorf("%w: duplicate topic ID %s", kerr.InvalidRequest, res.ID)
			continue
		case byName:
			if t, ok = img.Topic(res.Name); !ok {
				res.Err = fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, res.Name)
				continue
			}
		default:
			if t, ok = img.TopicByID(res.ID); !ok {
				res.Err = fmt.Errorf("%w: topic ID %s does not exist", kerr.UnknownTopicID, res.ID)
				continue
			}
		}
		res.Name, res.ID = t.Name, t.ID
		if deleting[t.ID] {
			res.Err = fmt.Errorf("%w: topic %q is named twice in the request", kerr.InvalidRequest, t.Name)
			continue
		}
		deleting[t.ID] = true
		recs = append(recs, metadata.DeleteTopic{ID: t.ID})
		pending = append(pending, i)
	}
	if len(recs) == 0 {
		return results
	}
	if _, err := c.proposeLocked(ctx, recs...); err != nil {
		for _, i := range pending {
			results[i].Err = err
		}
		return results
	}
	c.logger.Info("deleted topics", "count", len(recs))
	return results
}

// CreatePartitions grows topic to count partitions. assignment, if non-nil, gives the replicas
// of each new partition (len(assignment) == count - current count). With validateOnly nothing
// is committed. The error wraps a *kerr.Error.
func (c *Controller) CreatePartitions(ctx context.Context, topic string, count int32, assignment [][]int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return err
	}
	img := c.Image()
	t, ok := img.Topic(topic)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, topic)
	}
	current := int32(len(t.Partitions))
	switch {
	case count == current:
		return fmt.Errorf("%w: topic %q already has %d partitions", kerr.InvalidPartitions, topic, current)
	case count < current:
		return fmt.Errorf("%w: topic %q has %d partitions, which is more than the requested %d", kerr.InvalidPartitions, topic, current, count)
	case count > maxPartitions:
		return fmt.Errorf("%w: number of partitions %d exceeds the limit of %d", kerr.InvalidPartitions, count, maxPartitions)
	}
	p := newPlanner(img)
	rf := t.ReplicationFactor()
	var partitions []metadata.Partition
	if assignment != nil {
		if int32(len(assignment)) != count-current {
			return fmt.Errorf("%w: %d replica lists for %d new partitions", kerr.InvalidReplicaAssignment, len(assignment), count-current)
		}
		if err := p.checkAssignment(assignment, rf); err != nil {
			return err
		}
		partitions = p.assigned(assignment, current)
	} else {
		if err := p.checkReplicationFactor(rf); err != nil {
			return err
		}
		partitions = p.place(count-current, rf, current)
	}
	if err := c.newBudget(img).take(partitions); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := c.proposeLocked(ctx, metadata.CreatePartitions{TopicID: t.ID, Partitions: partitions}); err != nil {
		return err
	}
	c.logger.Info("created partitions", "topic", topic, "from", current, "to", count)
	return nil
}

// planner places replicas on the registered brokers and hands out topic IDs for one request.
type planner struct {
	img     *metadata.Image
	brokers []int32 // every registered broker, sorted
	// usable are the brokers new replicas may be placed on (placement.go).
	usable []metadata.Broker
	// next is the start offset of the next placement. It starts at the cluster's partition
	// count, so leaders spread across topics too.
	next    int
	usedIDs map[metadata.UUID]bool
}

func newPlanner(img *metadata.Image) *planner {
	p := &planner{img: img, brokers: img.BrokerIDs(), usable: usableBrokers(img), usedIDs: make(map[metadata.UUID]bool)}
	for _, t := range img.Topics {
		p.next += len(t.Partitions)
	}
	return p
}

// checkReplicationFactor reports whether rf replicas fit on the usable brokers.
func (p *planner) checkReplicationFactor(rf int16) error {
	if int(rf) > len(p.usable) || len(p.usable) == 0 {
		return placementError(rf, len(p.usable))
	}
	return nil
}

// place assigns count partitions numbered from first, rf replicas each (placeReplicas). The
// leader is the first replica and the ISR is all replicas, as Kafka. checkReplicationFactor
// must have accepted rf.
func (p *planner) place(count int32, rf int16, first int32) []metadata.Partition {
	lists, err := placeReplicas(p.usable, count, rf, p.next)
	if err != nil {
		panic(fmt.Sprintf("controller: placement after a successful check: %v", err))
	}
	p.next += int(count)
	out := make([]metadata.Partition, count)
	for i, replicas := range lists {
		out[i] = newPartition(first+int32(i), replicas)
	}
	return out
}

// assigned builds partitions numbered from first with the given replica lists. As in Kafka's
// createTopic with a manual assignment, the ISR is the replicas that are active (unfenced, not
// in controlled shutdown) and the leader the first of them; checkAssignment has made sure every
// list has one.
func (p *planner) assigned(lists [][]int32, first int32) []metadata.Partition {
	active := activeIn(p.img)
	out := make([]metadata.Partition, len(lists))
	for i, replicas := range lists {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(b int32) bool { return !active(b) })
		out[i] = metadata.Partition{
			Partition: first + int32(i),
			Replicas:  slices.Clone(replicas),
			ISR:       isr,
			Leader:    isr[0],
		}
	}
	return out
}

func newPartition(index int32, replicas []int32) metadata.Partition {
	return metadata.Partition{
		Partition: index,
		Replicas:  replicas,
		ISR:       slices.Clone(replicas),
		Leader:    replicas[0],
	}
}

// checkAssignment validates manual replica lists: each non-empty, without repeats, on registered
// brokers (fenced ones allowed, as Kafka), with at least one active broker (Kafka: "All brokers
// specified in the manual partition assignment for partition N are fenced or in controlled
// shutdown."), and all of one length (rf, if rf > 0).
func (p *planner) checkAssignment(lists [][]int32, rf int16) error {
	for i, replicas := range lists {
		if len(replicas) == 0 {
			return fmt.Errorf("%w: partition %d has no replicas", kerr.InvalidReplicaAssignment, i)
		}
		if rf > 0 && len(replicas) != int(rf) {
			return fmt.Errorf("%w: partition %d has %d replicas, but the other partitions have %d", kerr.InvalidReplicaAssignment, i, len(replicas), rf)
		}
		if len(replicas) > len(p.brokers) {
			return fmt.Errorf("%w: partition %d has %d replicas, but there are only %d brokers", kerr.InvalidReplicaAssignment, i, len(replicas), len(p.brokers))
		}
		rf = int16(len(replicas))
		for j, b := range replicas {
			if slices.Contains(replicas[:j], b) {
				return fmt.Errorf("%w: broker %d appears twice in the replicas of partition %d", kerr.InvalidReplicaAssignment, b, i)
			}
			if _, ok := p.img.Brokers[b]; !ok {
				return fmt.Errorf("%w: broker %d in the replicas of partition %d is not registered", kerr.InvalidReplicaAssignment, b, i)
			}
		}
		if !slices.ContainsFunc(replicas, activeIn(p.img)) {
			return fmt.Errorf("%w: All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", kerr.InvalidReplicaAssignment, i)
		}
	}
	return nil
}

// newTopicID returns a random (v4) UUID that is not zero and not in use.
func (p *planner) newTopicID() metadata.UUID {
	for {
		id := metadata.RandomUUID()
		if _, taken := p.img.TopicsByID[id]; !taken && !id.IsZero() && !p.usedIDs[id] {
			p.usedIDs[id] = true
			return id
		}
	}
}
