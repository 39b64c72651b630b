package controller

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// hashicorp/raft does not expose how far the leader has replicated its log to each follower.
// DescribeQuorum reports it and AddRaftVoter must know it (a new voter is promoted once it has
// caught up, as Kafka's leader checks), so the leader's transport watches the answers to its
// AppendEntries and InstallSnapshot requests: a successful answer means the follower's log
// matches the leader's up to the last entry sent.

// replicaProgress is the replication state of one follower as the leader's transport saw it.
type replicaProgress struct {
	// match is the highest log index the follower is known to hold (0 unknown).
	match uint64
	// lastContact is the last successful answer; caughtUp the last answer at which match
	// reached the leader's last index.
	lastContact, caughtUp time.Time
}

// progressTracker records replicaProgress per Raft server id. Its lock is a leaf.
type progressTracker struct {
	// raft gives the leader's last log index; the Raft instance is built after the transport,
	// so it is set later (nil until then).
	raft atomic.Pointer[raft.Raft]

	mu struct {
		sync.Mutex
		m map[raft.ServerID]replicaProgress
		// changed is closed and replaced at every update, waking waitCaughtUp.
		changed chan struct{}
	}
}

func newProgressTracker() *progressTracker {
	p := &progressTracker{}
	p.mu.m = map[raft.ServerID]replicaProgress{}
	p.mu.changed = make(chan struct{})
	return p
}

// record notes a successful answer from id showing that it holds the log up to match (0:
// a heartbeat, which says nothing of the log).
func (p *progressTracker) record(id raft.ServerID, match uint64) {
	now := time.Now()
	var last uint64
	if r := p.raft.Load(); r != nil {
		last = r.LastIndex()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.mu.m[id]
	r.lastContact = now
	r.match = max(r.match, match)
	if r.match >= last && r.match > 0 {
		r.caughtUp = now
	}
	p.mu.m[id] = r
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
}

// reset forgets everything: a node that becomes leader again must not trust what it saw
// in an earlier term.
func (p *progressTracker) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.mu.m)
}

// get returns what is known of id.
func (p *progressTracker) get(id raft.ServerID) (replicaProgress, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.mu.m[id]
	return r, ok
}

// waitMatch waits until id is known to hold the log up to index, or done is closed; it
// reports whether it got there.
func (p *progressTracker) waitMatch(id raft.ServerID, index uint64, done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		ok := p.mu.m[id].match >= index
		changed := p.mu.changed
		p.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

// trackingTransport is the Raft network transport with the leader's side of replication
// watched by a progressTracker.
type trackingTransport struct {
	*raft.NetworkTransport
	progress *progressTracker
}

// AppendEntries implements raft.Transport.
func (t *trackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.appended(id, args, resp)
	}
	return err
}

// appended records a successful AppendEntries answer. An empty request with no previous
// entry is a heartbeat: it says the follower is there, not what it holds.
func (t *trackingTransport) appended(id raft.ServerID, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if resp == nil || !resp.Success {
		return
	}
	t.progress.record(id, args.PrevLogEntry+uint64(len(args.Entries)))
}

// InstallSnapshot implements raft.Transport: a follower that took a snapshot holds the log up
// to its last index.
func (t *trackingTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	err := t.NetworkTransport.InstallSnapshot(id, target, args, resp, data)
	if err == nil && resp.Success {
		t.progress.record(id, args.LastLogIndex)
	}
	return err
}

// AppendEntriesPipeline implements raft.Transport: the pipeline's answers pass through a
// goroutine that records them before raft reads them.
func (t *trackingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	inner, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	p := &trackingPipeline{inner: inner, t: t, id: id, out: make(chan raft.AppendFuture, 1), stop: make(chan struct{})}
	go p.forward()
	return p, nil
}

// trackingPipeline forwards a pipeline's answers to raft, recording each on the way.
type trackingPipeline struct {
	inner    raft.AppendPipeline
	t        *trackingTransport
	id       raft.ServerID
	out      chan raft.AppendFuture
	stop     chan struct{}
	stopOnce sync.Once
}

// forward runs until Close: the network pipeline's consumer channel is never closed.
func (p *trackingPipeline) forward() {
	for {
		select {
		case f := <-p.inner.Consumer():
			if f.Error() == nil {
				p.t.appended(p.id, f.Request(), f.Response())
			}
			select {
			case p.out <- f:
			case <-p.stop:
				return
			}
		case <-p.stop:
			return
		}
	}
}

func (p *trackingPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	return p.inner.AppendEntries(args, resp)
}

func (p *trackingPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *trackingPipeline) Close() error {
	p.stopOnce.Do(func() { close(p.stop) })
	return p.inner.Close()
}
