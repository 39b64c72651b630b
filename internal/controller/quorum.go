package controller

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/samsa-io/samsa/internal/metadata"
)

// QuorumReplica is one member of the metadata quorum as DescribeQuorum reports it.
type QuorumReplica struct {
	ID int32
	// DirectoryID is the directory id of its metadata log directory, as a dynamic quorum
	// describes its controllers (zero unknown).
	DirectoryID metadata.UUID
	// Addr is its controller-listener (Raft) address.
	Addr string
	// Endpoints are its controller-listener endpoints as a dynamic quorum describes them
	// (nil: Addr on the controller listener).
	Endpoints []metadata.Endpoint
	// LogEndOffset is the last metadata log index it is known to hold (-1 unknown): the
	// leader's own last index; on the leader, the last index its transport saw a follower
	// acknowledge (progress.go); else what a node last reported (a broker's heartbeat carries
	// its applied metadata offset).
	LogEndOffset int64
	// LastFetch is when it last answered or reported (zero unknown); LastCaughtUp when it was
	// last known to hold the leader's whole log (from a report: at or above the commit index).
	LastFetch, LastCaughtUp time.Time
}

// QuorumInfo is the state of the metadata quorum, as its leader answers DescribeQuorum.
type QuorumInfo struct {
	LeaderID      int32 // -1 when none is known
	LeaderEpoch   int32 // the Raft term
	HighWatermark int64 // the commit index
	Voters        []QuorumReplica
	Observers     []QuorumReplica // non-voters: broker-only nodes
}

// quorumProgress records what members report of their metadata log position.
type quorumProgress struct {
	mu sync.Mutex
	m  map[int32]memberProgress
}

type memberProgress struct {
	offset         int64
	at, caughtUpAt time.Time
}

// ReportMetadataOffset records that node id holds the metadata log up to offset (from a
// broker heartbeat's CurrentMetadataOffset), for QuorumInfo.
func (c *Controller) ReportMetadataOffset(id int32, offset int64) {
	now := time.Now()
	commit := int64(c.raft.CommitIndex())
	c.progress.mu.Lock()
	defer c.progress.mu.Unlock()
	if c.progress.m == nil {
		c.progress.m = map[int32]memberProgress{}
	}
	p := c.progress.m[id]
	p.offset, p.at = offset, now
	if offset >= commit {
		p.caughtUpAt = now
	}
	c.progress.m[id] = p
}

// QuorumInfo describes the quorum: leader, term, commit index and each member's progress as
// far as this node knows it (the leader knows the most).
func (c *Controller) QuorumInfo() (QuorumInfo, error) {
	info := QuorumInfo{LeaderID: -1, LeaderEpoch: int32(c.raft.CurrentTerm()), HighWatermark: int64(c.raft.CommitIndex())}
	if id, _, ok := c.Leader(); ok {
		info.LeaderID = id
	}
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return info, err
	}
	now := time.Now()
	leader := c.raft.State() == raft.Leader
	ctrls := c.Image().Controllers
	c.progress.mu.Lock()
	defer c.progress.mu.Unlock()
	for _, s := range f.Configuration().Servers {
		id, ok := serverNodeID(s.ID)
		if !ok {
			continue
		}
		r := QuorumReplica{ID: id, Addr: string(s.Address), LogEndOffset: -1,
			DirectoryID: ctrls[id].DirectoryID, Endpoints: ctrls[id].Endpoints}
		if rp, ok := c.replication.get(s.ID); leader && ok && rp.match > 0 {
			r.LogEndOffset, r.LastFetch, r.LastCaughtUp = int64(rp.match), rp.lastContact, rp.caughtUp
		} else if p, ok := c.progress.m[r.ID]; ok {
			r.LogEndOffset, r.LastFetch, r.LastCaughtUp = p.offset, p.at, p.caughtUpAt
		}
		if r.ID == c.cfg.NodeID {
			r.LogEndOffset = int64(c.raft.LastIndex())
			r.LastFetch, r.LastCaughtUp = now, now
		}
		if s.Suffrage == raft.Voter {
			info.Voters = append(info.Voters, r)
		} else {
			info.Observers = append(info.Observers, r)
		}
	}
	// Brokers that report but are not Raft members (none today) are observers too.
	for id, p := range c.progress.m {
		known := slices.ContainsFunc(info.Voters, func(r QuorumReplica) bool { return r.ID == id }) ||
			slices.ContainsFunc(info.Observers, func(r QuorumReplica) bool { return r.ID == id })
		if !known {
			info.Observers = append(info.Observers, QuorumReplica{ID: id, LogEndOffset: p.offset, LastFetch: p.at, LastCaughtUp: p.caughtUpAt})
		}
	}
	slices.SortFunc(info.Voters, func(a, b QuorumReplica) int { return int(a.ID - b.ID) })
	slices.SortFunc(info.Observers, func(a, b QuorumReplica) int { return int(a.ID - b.ID) })
	return info, nil
}
