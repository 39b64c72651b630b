package controller

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

// AlterConfigs sets and deletes configs of one resource: a topic (resourceType
// metadata.ResourceTopic, name = topic name) or a broker (metadata.ResourceBroker, name = decimal
// broker ID, or "" for the cluster-wide default). Values are checked with the configured
// validator. Deleting a key that is not set is not an error. With validateOnly nothing is
// committed. The error wraps a *kerr.Error.
func (c *Controller) AlterConfigs(ctx context.Context, resourceType int8, name string, set map[string]string, del []string, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return err
	}
	img := c.Image()
	var validate func(name, value string) error
	switch resourceType {
	case metadata.ResourceTopic:
		if _, ok := img.Topic(name); !ok {
			return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
		}
		validate = c.cfg.ValidateTopicConfig
	case metadata.ResourceBroker:
		if name != "" {
			id, err := strconv.ParseInt(name, 10, 32)
			if err != nil || id < 0 || strconv.FormatInt(id, 10) != name {
				return fmt.Errorf("%w: invalid broker resource name %q", kerr.InvalidRequest, name)
			}
		}
		validate = c.cfg.ValidateBrokerConfig
	default:
		return fmt.Errorf("%w: unsupported config resource type %d", kerr.InvalidRequest, resourceType)
	}
	for _, k := range del {
		if _, ok := set[k]; ok {
			return fmt.Errorf("%w: config %s is both set and deleted", kerr.InvalidRequest, k)
		}
	}
	if err := validateConfigs(validate, set); err != nil {
		return err
	}
	if validateOnly || len(set) == 0 && len(del) == 0 {
		return nil
	}
	rec := metadata.SetConfigs{ResourceType: resourceType, ResourceName: name, Set: set, Delete: del}
	if _, err := c.proposeLocked(ctx, rec); err != nil {
		return err
	}
	c.logger.Info("altered configs", "resourceType", resourceType, "name", name, "set", len(set), "deleted", len(del))
	return nil
}

// AllocateProducerIDs reserves count producer IDs and returns the first. Blocks never overlap
// and, being committed to the log, survive restarts. The error wraps a *kerr.Error.
func (c *Controller) AllocateProducerIDs(ctx context.Context, count int) (first int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.beginLocked(ctx); err != nil {
		return 0, err
	}
	if count <= 0 || count > math.MaxInt32 {
		return 0, fmt.Errorf("%w: cannot allocate %d producer IDs", kerr.InvalidRequest, count)
	}
	first = c.Image().NextProducerID
	if _, err := c.proposeLocked(ctx, metadata.AllocateProducerIDs{FirstID: first, Count: int32(count)}); err != nil {
		return 0, err
	}
	return first, nil
}
