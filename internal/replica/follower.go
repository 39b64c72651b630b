package replica

// The follower's side of a partition: what the fetcher (fetcher.go) does to the local log.
// Each operation holds the replication state's read lock and first checks that this node
// still follows the same leader epoch, so a fetch answered after a role change is dropped.

// followsAt reports whether this node follows leader at leaderEpoch.
func (p *Partition) followsAtLocked(leader, leaderEpoch int32) bool {
	return p.rs.role == RoleFollower && p.rs.leader == leader && p.leaderEpoch.Load() == leaderEpoch
}

func (p *Partition) followsAt(leader, leaderEpoch int32) bool {
	p.rs.RLock()
	defer p.rs.RUnlock()
	return p.followsAtLocked(leader, leaderEpoch)
}

// appendAsFollower appends batches fetched from the leader (offsets and epochs kept), then
// takes the leader's high watermark bounded by the local log end, and raises the log start to
// the leader's (retention, DeleteRecords) as far as the local log reaches.
func (p *Partition) appendAsFollower(leader, leaderEpoch int32, batches []byte, leaderHW, leaderLogStart int64) error {
	p.rs.RLock()
	defer p.rs.RUnlock()
	if !p.followsAtLocked(leader, leaderEpoch) {
		return ErrNotLeader
	}
	if len(batches) > 0 {
		if err := p.log.AppendAsFollower(batches); err != nil {
			return err
		}
	}
	end := p.log.LogEndOffset()
	hw := max(min(leaderHW, end), p.log.LogStartOffset())
	if p.highWatermark.Swap(hw) != hw {
		p.wake() // consumers fetching from this follower (KIP-392) wait on it
	}
	if start := min(leaderLogStart, end); start > p.log.LogStartOffset() {
		if _, err := p.log.DeleteRecordsBefore(start); err != nil {
			return err
		}
	}
	return nil
}

// truncateAsFollower truncates the log to offset (the batch holding it goes whole) and lowers
// the high watermark to the new log end if it was above.
func (p *Partition) truncateAsFollower(leader, leaderEpoch int32, offset int64) error {
	p.rs.RLock()
	defer p.rs.RUnlock()
	if !p.followsAtLocked(leader, leaderEpoch) {
		return ErrNotLeader
	}
	if err := p.log.TruncateTo(offset); err != nil {
		return err
	}
	p.lowerHighWatermark(p.log.LogEndOffset())
	return nil
}

// restartAsFollowerAt empties the log and restarts it at the leader's log start offset.
func (p *Partition) restartAsFollowerAt(leader, leaderEpoch int32, offset int64) error {
	p.rs.RLock()
	defer p.rs.RUnlock()
	if !p.followsAtLocked(leader, leaderEpoch) {
		return ErrNotLeader
	}
	if err := p.log.TruncateFullyAndStartAt(offset); err != nil {
		return err
	}
	p.highWatermark.Store(offset)
	return nil
}

func (p *Partition) lowerHighWatermark(end int64) {
	for {
		cur := p.highWatermark.Load()
		if cur <= end || p.highWatermark.CompareAndSwap(cur, end) {
			return
		}
	}
}

// truncationOffset is one step of a follower's truncation after a leader change (KIP-101,
// KIP-279). The leader answered OffsetForLeaderEpoch with (leaderEpoch, leaderEnd) for the
// follower's latest epoch; the follower's own end for leaderEpoch is (ownEpoch, ownEnd) and its
// log ends at logEnd. When the follower knows the leader's epoch, it truncates to the smaller
// end and is done; otherwise it truncates to where its largest epoch below the leader's ends
// and asks again.
func truncationOffset(leaderEpoch int32, leaderEnd int64, ownEpoch int32, ownEnd, logEnd int64) (offset int64, done bool) {
	if ownEpoch != leaderEpoch {
		return min(ownEnd, logEnd), false
	}
	return min(ownEnd, leaderEnd, logEnd), true
}

// outOfRangeAction decides what a follower does when the leader answers OFFSET_OUT_OF_RANGE:
// truncate to the leader's log end when the local log is longer, or restart empty at the
// leader's log start when the local log ends below it.
func outOfRangeAction(logEnd, leaderEnd, leaderStart int64) (truncateTo int64, restartAt int64) {
	switch {
	case logEnd > leaderEnd:
		return leaderEnd, -1
	case logEnd < leaderStart:
		return -1, leaderStart
	}
	return -1, -1
}
