package controller

// INTERIM: registration and heartbeats over the network before the broker-lifecycle state
// machine (fencing, sessions, epochs) lands; replaced by it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/metadata"
)

// HandleBrokerRegistration answers BrokerRegistration on the active controller.
func (c *Controller) HandleBrokerRegistration(ctx context.Context, r *kmsg.BrokerRegistrationRequest) *kmsg.BrokerRegistrationResponse {
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	b := metadata.Broker{ID: r.BrokerID, IncarnationID: r.IncarnationID}
	if r.Rack != nil {
		b.Rack = *r.Rack
	}
	protos := map[int16]string{0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}
	for _, l := range r.Listeners {
		b.Endpoints = append(b.Endpoints, metadata.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: protos[l.SecurityProtocol]})
	}
	if err := c.RegisterBroker(ctx, b); err != nil {
		resp.ErrorCode = ErrorCode(err)
		return resp
	}
	resp.BrokerEpoch = int64(c.Image().Index)
	return resp
}

// HandleBrokerHeartbeat answers BrokerHeartbeat on the active controller.
func (c *Controller) HandleBrokerHeartbeat(ctx context.Context, r *kmsg.BrokerHeartbeatRequest) *kmsg.BrokerHeartbeatResponse {
	resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	if err := c.beginLockedNoLock(); err != nil {
		resp.ErrorCode = ErrorCode(err)
		return resp
	}
	c.ReportMetadataOffset(r.BrokerID, r.CurrentMetadataOffset)
	resp.IsCaughtUp = true
	resp.ShouldShutdown = r.WantShutdown
	return resp
}

func (c *Controller) beginLockedNoLock() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beginLocked()
}
