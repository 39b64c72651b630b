package controller

import (
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/samsa-io/samsa/internal/metadata"
)

// RaftListener names the registration endpoint of a broker-only node's Raft transport. It is
// not a Kafka listener: Metadata and DescribeCluster show a listener's endpoints only to
// clients of the listener with that name, which no client connects to.
const RaftListener = "__SAMSA_RAFT"

// addNonVoterTimeout bounds the wait for a configuration change to be enqueued.
const addNonVoterTimeout = 10 * time.Second

// ensureNonVoter makes a registered broker-only node a Raft non-voter at the address its
// registration names (RaftListener), or updates that address after a restart, so that it
// receives the metadata log. Voters and brokers without such an endpoint are left alone.
func (c *Controller) ensureNonVoter(b metadata.Broker) error {
	var addr string
	for _, e := range b.Endpoints {
		if e.Listener == RaftListener {
			addr = net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
		}
	}
	if addr == "" {
		return nil
	}
	id := serverID(b.ID)
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id && (s.Suffrage == raft.Voter || string(s.Address) == addr) {
			return nil
		}
	}
	if err := c.raft.AddNonvoter(id, raft.ServerAddress(addr), 0, addNonVoterTimeout).Error(); err != nil {
		return err
	}
	c.logger.Info("added a broker to the metadata quorum as a non-voter", "broker", b.ID, "addr", addr)
	return nil
}
