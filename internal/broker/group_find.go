package broker

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/txn"
)

// FindCoordinator: v0-v3 name one key, v4+ a batch, v6 adds share-group keys (KIP-932).
func init() { register(kmsg.FindCoordinator.Int16(), 0, 6, handleFindCoordinator) }

// Coordinator key types.
const (
	coordinatorGroup       int8 = 0
	coordinatorTransaction int8 = 1
	coordinatorShare       int8 = 2
)

// coordinatorLoadWait bounds how long FindCoordinator waits for this broker to finish loading
// the group's partition, so that the client's next request is served rather than refused with
// COORDINATOR_LOAD_IN_PROGRESS.
const coordinatorLoadWait = 5 * time.Second

func handleFindCoordinator(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		var c kmsg.FindCoordinatorResponseCoordinator
		if code := b.findCoordinatorAuthorized(req, r.CoordinatorType, key); code != nil {
			c = kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Port, c.ErrorCode = key, -1, -1, code.Code
		} else {
			c = b.findCoordinator(req, r.Version, r.CoordinatorType, key)
		}
		if r.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
			resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

func (b *Broker) findCoordinator(req *request, version int16, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key = key
	c.NodeID, c.Port = -1, -1
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode = err.Code
		c.ErrorMessage = &msg
		return c
	}
	// kafkaFail answers as Kafka's KafkaApis.getCoordinator refuses a key: no message in a
	// v4+ coordinator entry, the error's own description in the single answer of v0-v3.
	kafkaFail := func(err *kerr.Error) kmsg.FindCoordinatorResponseCoordinator {
		if version >= 4 {
			return fail(err, "")
		}
		return fail(err, err.Description)
	}
	topic, ensure, waitLoaded, what := group.OffsetsTopic, b.groups.EnsureTopic, b.groups.WaitLoaded, "group"
	switch keyType {
	case coordinatorGroup:
	case coordinatorTransaction:
		topic, ensure, waitLoaded, what = txn.TopicName, b.txns.EnsureTopic, b.txns.WaitLoaded, "transactional id"
	case coordinatorShare:
		// Kafka 4.1 refuses share keys below v6 and keys that are not
		// groupId:topicId:partition with INVALID_REQUEST; for the others it names the leader
		// of the key's __share_group_state partition, and answers COORDINATOR_NOT_AVAILABLE
		// while that topic does not exist, as it stays when share groups are not in use (a
		// single node cannot create it with its default replication factor of 3). Samsa has
		// no share groups and no such topic.
		if version < 6 || !validShareKey(key) {
			return kafkaFail(kerr.InvalidRequest)
		}
		return kafkaFail(kerr.CoordinatorNotAvailable)
	default:
		// Kafka fails the whole request (CoordinatorType.forId), every key with the error's
		// description.
		return fail(kerr.InvalidRequest, kerr.InvalidRequest.Description)
	}
	img := b.ctrl.Image()
	t, ok := img.Topic(topic)
	if !ok {
		if err := ensure(req.conn.ctx); err != nil {
			b.log.Warn("creating an internal topic", "topic", topic, "err", err)
			return fail(kerr.CoordinatorNotAvailable, err.Error())
		}
		img = b.ctrl.Image()
		if t, ok = img.Topic(topic); !ok {
			return fail(kerr.CoordinatorNotAvailable, topic+" is being created")
		}
	}
	p := group.PartitionFor(key, int32(len(t.Partitions)))
	leader := t.Partitions[p].Leader
	br, ok := img.Brokers[leader]
	if leader < 0 || !ok {
		return fail(kerr.CoordinatorNotAvailable, "the "+what+"'s coordinator partition has no leader")
	}
	for _, ep := range br.Endpoints {
		if ep.Listener == req.conn.listener {
			c.NodeID, c.Host, c.Port = leader, ep.Host, ep.Port
		}
	}
	if c.NodeID < 0 {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator has no endpoint on this listener")
	}
	if leader == b.cfg.NodeID {
		ctx, cancel := context.WithTimeout(req.conn.ctx, coordinatorLoadWait)
		waitLoaded(ctx, p)
		cancel()
	}
	return c
}

// validShareKey reports whether key is a share-partition key, groupId:topicId:partition, by
// the rules of Kafka's SharePartitionKey.validate: Java's split(":"), which drops trailing
// empty fields, gives three fields; the group id is not blank (Java's trim); the topic id is
// Kafka's base64url encoding of 16 bytes (Uuid.fromString: at most 24 characters, padding
// optional); the partition parses as an int32 (Integer.parseInt).
func validShareKey(key string) bool {
	fields := strings.Split(key, ":")
	for len(fields) > 0 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	if len(fields) != 3 {
		return false
	}
	if strings.TrimFunc(fields[0], func(r rune) bool { return r <= ' ' }) == "" {
		return false
	}
	id := fields[1]
	enc := base64.RawURLEncoding
	if strings.HasSuffix(id, "=") {
		enc = base64.URLEncoding
	}
	// Go's decoder skips newlines, Java's does not.
	if len(id) > 24 || strings.ContainsAny(id, "\r\n") {
		return false
	}
	if raw, err := enc.DecodeString(id); err != nil || len(raw) != 16 {
		return false
	}
	_, err := strconv.ParseInt(fields[2], 10, 32)
	return err == nil
}

// findCoordinatorAuthorized checks DESCRIBE on the group or the transactional id of a key, and
// returns Kafka's error when refused.
func (b *Broker) findCoordinatorAuthorized(req *request, keyType int8, key string) *kerr.Error {
	switch keyType {
	case coordinatorGroup:
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key) {
			return kerr.GroupAuthorizationFailed
		}
	case coordinatorTransaction:
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key) {
			return kerr.TransactionalIDAuthorizationFailed
		}
	}
	return nil
}
