package storage

// The log operations replication needs beyond appends and truncation (see package replica):
// the latest leader epoch (a follower's OffsetForLeaderEpoch question), recording a new
// leader's epoch before its first append, and restarting a follower's log at the leader's log
// start when it fell below it.

// LatestEpoch returns the newest leader epoch in the epoch cache, or false when it is empty.
func (l *Log) LatestEpoch() (int32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.mu.epochs.latest()
	return e.epoch, ok
}

// AssignEpochStart records that leader epoch epoch starts at offset start, if epoch is newer
// than the latest one, as Kafka's leader does when it takes over (so OffsetForLeaderEpoch for
// the previous epoch ends where this one starts even before its first append).
func (l *Log) AssignEpochStart(epoch int32, start int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if !l.mu.epochs.assign(epoch, start) {
		return nil
	}
	return l.writeEpochsLocked()
}

// TruncateFullyAndStartAt deletes every batch and restarts the log empty at offset: a follower
// whose log end is below the leader's log start cannot fetch what the leader no longer has.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	return l.truncateFullyLocked(offset)
}
