package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/acl"
	"github.com/samsa-io/samsa/internal/auth"
	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/wire"
)

// clusterController is the broker's view of the metadata quorum (broker.Controller): the image
// is this node's own (it is a member of the Raft quorum), and each metadata change runs on the
// local controller when this node is the active controller, or is sent as a Kafka request to
// the one that is. A forwarded change is answered once this node's own image shows it
// (bounded by forwardApplyWait), so a client that asks this broker next finds it, as it would
// on the active controller.
type clusterController struct {
	local  *controller.Controller
	client *controllerClient
	images *imageWaiter
	nodeID int32
	// brokerEpoch returns this broker's epoch (AllocateProducerIds carries it).
	brokerEpoch func() int64
}

var _ broker.Controller = (*clusterController)(nil)

// forwardApplyWait bounds the wait for a forwarded change to reach this node's image.
const forwardApplyWait = 10 * time.Second

func (c *clusterController) Image() *metadata.Image { return c.local.Image() }

// Forwards reports whether changes go to another node now: this node is not the active
// controller (broker's forwardingController).
func (c *clusterController) Forwards() bool { return !c.local.IsLeader() }

// requestFor forwards a topic mutation made for a client (ctx carries a
// wire.ForwardedClient): the client rides in wire.ForwardedClientTag, for the active
// controller to charge its controller mutation quota, and the throttle of the answer is
// given back in the ForwardedClient.
func (c *clusterController) requestFor(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	fc := wire.ForwardedClientFrom(ctx)
	if fc != nil {
		wire.SetForwardedClient(req, *fc)
	}
	resp, err := c.client.request(ctx, req, notController)
	if fc != nil && err == nil {
		if tr, ok := resp.(kmsg.ThrottleResponse); ok {
			ms, _ := tr.Throttle()
			fc.Throttle = max(fc.Throttle, time.Duration(ms)*time.Millisecond)
		}
	}
	return resp, err
}

func notController(resp kmsg.Response) bool {
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			if t.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, t := range r.Resources {
			if t.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.AlterUserSCRAMCredentialsResponse:
		for _, u := range r.Results {
			if u.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.CreateACLsResponse:
		for _, r := range r.Results {
			if r.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.DeleteACLsResponse:
		for _, r := range r.Results {
			if r.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.AlterClientQuotasResponse:
		for _, e := range r.Entries {
			if e.ErrorCode == kerr.NotController.Code {
				return true
			}
		}
	case *kmsg.UpdateFeaturesResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.CreateDelegationTokenResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.RenewDelegationTokenResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.ExpireDelegationTokenResponse:
		return r.ErrorCode == kerr.NotController.Code
	}
	return false
}

// kafkaErr turns a response's error code and message into the error the broker's handlers
// expect from the controller (nil for code 0).
func kafkaErr(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	ke, _ := kerr.ErrorForCode(code).(*kerr.Error)
	if ke == nil {
		ke = kerr.UnknownServerError
	}
	if msg == nil || *msg == "" {
		return ke
	}
	return &controller.KafkaError{Code: ke, Message: *msg}
}

func requestTimeout(ctx context.Context) int32 {
	if dl, ok := ctx.Deadline(); ok {
		return int32(max(time.Until(dl).Milliseconds(), 1))
	}
	return 30_000
}

func (c *clusterController) CreateTopics(ctx context.Context, reqs []controller.CreateTopic, validateOnly bool) []controller.TopicResult {
	if c.local.IsLeader() {
		return c.local.CreateTopics(ctx, reqs, validateOnly)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = requestTimeout(ctx)
	req.ValidateOnly = validateOnly
	for _, ct := range reqs {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = ct.Name, ct.NumPartitions, ct.ReplicationFactor
		for p, replicas := range ct.Assignments {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = p, replicas
			t.ReplicaAssignment = append(t.ReplicaAssignment, a)
		}
		for k, v := range ct.Configs {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
			t.Configs = append(t.Configs, cfg)
		}
		req.Topics = append(req.Topics, t)
	}
	results := make([]controller.TopicResult, len(reqs))
	resp, err := c.requestFor(ctx, req)
	for i, ct := range reqs {
		results[i] = controller.TopicResult{Name: ct.Name, Err: err}
	}
	if err != nil {
		return results
	}
	byName := map[string]kmsg.CreateTopicsResponseTopic{}
	for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
		byName[t.Topic] = t
	}
	var created []metadata.UUID
	for i := range results {
		t, ok := byName[results[i].Name]
		if !ok {
			results[i].Err = kerr.UnknownServerError
			continue
		}
		results[i].Err = kafkaErr(t.ErrorCode, t.ErrorMessage)
		results[i].ID = t.TopicID
		results[i].NumPartitions, results[i].ReplicationFactor = t.NumPartitions, t.ReplicationFactor
		if results[i].Err == nil && !validateOnly {
			created = append(created, t.TopicID)
		}
	}
	c.images.wait(ctx, func(img *metadata.Image) bool {
		for _, id := range created {
			if _, ok := img.TopicByID(id); !ok {
				return false
			}
		}
		return true
	})
	return results
}

func (c *clusterController) DeleteTopics(ctx context.Context, names []string, ids [][16]byte) []controller.DeleteResult {
	if c.local.IsLeader() {
		return c.local.DeleteTopics(ctx, names, ids)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = requestTimeout(ctx)
	for _, n := range names {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, t)
		req.TopicNames = append(req.TopicNames, n)
	}
	for _, id := range ids {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.TopicID = id
		req.Topics = append(req.Topics, t)
	}
	n := len(names) + len(ids)
	results := make([]controller.DeleteResult, n)
	resp, err := c.requestFor(ctx, req)
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	rts := resp.(*kmsg.DeleteTopicsResponse).Topics
	var deleted []metadata.UUID
	for i := range results {
		if i >= len(rts) {
			results[i].Err = kerr.UnknownServerError
			continue
		}
		t := rts[i]
		if t.Topic != nil {
			results[i].Name = *t.Topic
		}
		results[i].ID = t.TopicID
		results[i].Err = kafkaErr(t.ErrorCode, t.ErrorMessage)
		if results[i].Err == nil {
			deleted = append(deleted, t.TopicID)
		}
	}
	c.images.wait(ctx, func(img *metadata.Image) bool {
		for _, id := range deleted {
			if _, ok := img.TopicByID(id); ok {
				return false
			}
		}
		return true
	})
	return results
}

func (c *clusterController) CreatePartitions(ctx context.Context, topic string, count int32, assignment [][]int32, validateOnly bool) error {
	if c.local.IsLeader() {
		return c.local.CreatePartitions(ctx, topic, count, assignment, validateOnly)
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = requestTimeout(ctx)
	req.ValidateOnly = validateOnly
	t := kmsg.NewCreatePartitionsRequestTopic()
	t.Topic, t.Count = topic, count
	for _, replicas := range assignment {
		a := kmsg.NewCreatePartitionsRequestTopicAssignment()
		a.Replicas = replicas
		t.Assignment = append(t.Assignment, a)
	}
	req.Topics = append(req.Topics, t)
	resp, err := c.requestFor(ctx, req)
	if err != nil {
		return err
	}
	rts := resp.(*kmsg.CreatePartitionsResponse).Topics
	if len(rts) != 1 {
		return kerr.UnknownServerError
	}
	if err := kafkaErr(rts[0].ErrorCode, rts[0].ErrorMessage); err != nil || validateOnly {
		return err
	}
	c.images.wait(ctx, func(img *metadata.Image) bool {
		t, ok := img.Topic(topic)
		return ok && len(t.Partitions) >= int(count)
	})
	return nil
}

func (c *clusterController) AlterConfigs(ctx context.Context, resourceType int8, name string, set map[string]string, del []string, validateOnly bool) error {
	if c.local.IsLeader() {
		return c.local.AlterConfigs(ctx, resourceType, name, set, del, validateOnly)
	}
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceType(resourceType), name
	for k, v := range set {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value, cfg.Op = k, kmsg.StringPtr(v), kmsg.IncrementalAlterConfigOpSet
		r.Configs = append(r.Configs, cfg)
	}
	for _, k := range del {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op = k, kmsg.IncrementalAlterConfigOpDelete
		r.Configs = append(r.Configs, cfg)
	}
	req.Resources = append(req.Resources, r)
	before := c.local.Image().Index
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		return err
	}
	rs := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources
	if len(rs) != 1 {
		return kerr.UnknownServerError
	}
	if err := kafkaErr(rs[0].ErrorCode, rs[0].ErrorMessage); err != nil || validateOnly {
		return err
	}
	c.waitCaughtUp(ctx, before, resp)
	return nil
}

func (c *clusterController) UpdateFeatures(ctx context.Context, updates []controller.FeatureUpdate, validateOnly bool) error {
	if c.local.IsLeader() {
		return c.local.UpdateFeatures(ctx, updates, validateOnly)
	}
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = requestTimeout(ctx)
	req.ValidateOnly = validateOnly
	for _, u := range updates {
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = u.Name, u.Level, u.UpgradeType
		fu.AllowDowngrade = u.UpgradeType != 1
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
	}
	before := c.local.Image().Index
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.UpdateFeaturesResponse)
	if err := kafkaErr(r.ErrorCode, r.ErrorMessage); err != nil {
		return err
	}
	for _, fr := range r.Results {
		if err := kafkaErr(fr.ErrorCode, fr.ErrorMessage); err != nil {
			return err
		}
	}
	if !validateOnly {
		c.waitCaughtUp(ctx, before, resp)
	}
	return nil
}

func (c *clusterController) AllocateProducerIDs(ctx context.Context, count int) (int64, error) {
	if c.local.IsLeader() {
		return c.local.AllocateProducerIDs(ctx, count)
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = c.nodeID
	req.BrokerEpoch = c.brokerEpoch()
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		return 0, err
	}
	r := resp.(*kmsg.AllocateProducerIDsResponse)
	if err := kafkaErr(r.ErrorCode, nil); err != nil {
		return 0, err
	}
	if int(r.ProducerIDLen) < count {
		return 0, errors.New("the controller allocated fewer producer ids than asked")
	}
	return r.ProducerIDStart, nil
}

// waitCaughtUp waits (bounded) until this node's image has applied what the answering
// controller had applied when it answered resp, a forwarded change: the index its answer
// carries (wire.MetadataIndexTag), which a change that wrote no record (a binding that exists,
// a feature at its level, a refusal) has already reached. An answer without it (a version that
// is not flexible) waits for an index past before, the image's index when the change was sent.
func (c *clusterController) waitCaughtUp(ctx context.Context, before uint64, resp kmsg.Response) {
	if index, ok := wire.MetadataIndex(resp); ok {
		c.images.wait(ctx, func(img *metadata.Image) bool { return img.Index >= index })
		return
	}
	c.images.wait(ctx, func(img *metadata.Image) bool { return img.Index > before })
}

// imageWaiter lets callers wait for a condition on this node's image without polling: every
// published image closes the current channel.
type imageWaiter struct {
	local *controller.Controller
	mu    sync.Mutex
	ch    chan struct{}
}

func newImageWaiter(local *controller.Controller) (*imageWaiter, func()) {
	w := &imageWaiter{local: local, ch: make(chan struct{})}
	unsub := local.OnPublish(func(_, _ *metadata.Image) {
		w.mu.Lock()
		close(w.ch)
		w.ch = make(chan struct{})
		w.mu.Unlock()
	})
	return w, unsub
}

// wait returns once cond holds for the local image, ctx ends or forwardApplyWait passes.
func (w *imageWaiter) wait(ctx context.Context, cond func(*metadata.Image) bool) bool {
	timer := time.NewTimer(forwardApplyWait)
	defer timer.Stop()
	for {
		w.mu.Lock()
		ch := w.ch
		w.mu.Unlock()
		if cond(w.local.Image()) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

func (c *clusterController) AlterUserScramCredentials(ctx context.Context, dels []controller.ScramDeletion, ups []controller.ScramUpsertion) []controller.ScramResult {
	if c.local.IsLeader() {
		return c.local.AlterUserScramCredentials(ctx, dels, ups)
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	var users []string
	seen := map[string]bool{}
	note := func(u string) {
		if !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	for _, d := range dels {
		rd := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		rd.Name, rd.Mechanism = d.Name, auth.ScramMechanismCode(d.Mechanism)
		req.Deletions = append(req.Deletions, rd)
		note(d.Name)
	}
	for _, u := range ups {
		ru := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		ru.Name, ru.Mechanism, ru.Iterations, ru.Salt, ru.SaltedPassword = u.Name, auth.ScramMechanismCode(u.Mechanism), u.Iterations, u.Salt, u.SaltedPassword
		req.Upsertions = append(req.Upsertions, ru)
		note(u.Name)
	}
	before := c.local.Image().Index
	out := make([]controller.ScramResult, len(users))
	resp, err := c.client.request(ctx, req, notController)
	for i, u := range users {
		out[i] = controller.ScramResult{User: u, Err: err}
	}
	if err != nil {
		return out
	}
	byUser := map[string]error{}
	for _, r := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
		byUser[r.User] = kafkaErr(r.ErrorCode, r.ErrorMessage)
	}
	for i := range out {
		out[i].Err = byUser[out[i].User]
	}
	c.waitCaughtUp(ctx, before, resp)
	return out
}

func (c *clusterController) CreateAcls(ctx context.Context, bindings []acl.Binding) []error {
	if c.local.IsLeader() {
		return c.local.CreateAcls(ctx, bindings)
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, b := range bindings {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		req.Creations = append(req.Creations, cr)
	}
	before := c.local.Image().Index
	out := make([]error, len(bindings))
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		for i := range out {
			out[i] = err
		}
		return out
	}
	for i, r := range resp.(*kmsg.CreateACLsResponse).Results {
		if i < len(out) {
			out[i] = kafkaErr(r.ErrorCode, r.ErrorMessage)
		}
	}
	c.waitCaughtUp(ctx, before, resp)
	return out
}

func (c *clusterController) DeleteAcls(ctx context.Context, filters []acl.Filter) []controller.ACLDeleteResult {
	if c.local.IsLeader() {
		return c.local.DeleteAcls(ctx, filters)
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, f := range filters {
		rf := kmsg.NewDeleteACLsRequestFilter()
		rf.ResourceType, rf.ResourceName, rf.ResourcePatternType = f.ResourceType, f.ResourceName, f.PatternType
		rf.Principal, rf.Host, rf.Operation, rf.PermissionType = f.Principal, f.Host, f.Operation, f.Permission
		req.Filters = append(req.Filters, rf)
	}
	before := c.local.Image().Index
	out := make([]controller.ACLDeleteResult, len(filters))
	resp, err := c.client.request(ctx, req, notController)
	if err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	for i, r := range resp.(*kmsg.DeleteACLsResponse).Results {
		if i >= len(out) {
			break
		}
		out[i].Err = kafkaErr(r.ErrorCode, r.ErrorMessage)
		for _, m := range r.MatchingACLs {
			out[i].Matches = append(out[i].Matches, acl.Binding{ResourceType: m.ResourceType, ResourceName: m.ResourceName,
				PatternType: m.ResourcePatternType, Principal: m.Principal, Host: m.Host, Operation: m.Operation, Permission: m.PermissionType})
		}
	}
	c.waitCaughtUp(ctx, before, resp)
	return out
}
