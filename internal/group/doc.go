// Package group owns the group coordinator: consumer groups with Kafka's classic rebalance
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership), committed
// offsets (OffsetCommit, OffsetFetch, OffsetDelete, expiration), the group admin operations
// (ListGroups, DescribeGroups, DeleteGroups), and their persistence in the internal compacted
// topic __consumer_offsets.
//
// # Structure
//
// A Shard is the deterministic state machine of one __consumer_offsets partition: the groups
// that hash to it (PartitionFor, Kafka's abs(groupId.hashCode) % partitions) and their
// offsets. It performs no I/O and has no clock of its own: time and timers are injected, and
// the records it must persist go to a store function that returns once they are written.
// Tests drive it with a manual clock (see harness_test.go).
//
// The classic protocol lives in join.go (classicGroup in classic.go); offsets in offsets.go.
// KIP-848 consumer groups (ConsumerGroupHeartbeat) are meant to sit beside classicGroup in the
// same Shard, sharing groupOffsets and the records and timers machinery.
//
// The Coordinator (coordinator.go) is the runtime around the shards: it loads a shard by
// replaying its partition when this broker leads it and unloads it when leadership moves
// (Load, Unload, ApplyImage), serializes each shard's requests and timers with the shard's
// lock, and offers blocking calls to the broker's handlers (JoinGroup and SyncGroup wait for
// the rebalance, bounded by the request's context).
//
// # Records
//
// __consumer_offsets holds Kafka's own record formats (kmsg's types), so a log written by
// Samsa reads like Kafka's:
//
//	key version 0/1  OffsetCommitKey{group, topic, partition}
//	                 value OffsetCommitValue v3 (offset, leader epoch, metadata, commit time),
//	                 v1 when the commit carried a retention time (expire timestamp)
//	key version 2    GroupMetadataKey{group}
//	                 value GroupMetadataValue v3 (protocol type, generation, protocol,
//	                 leader, state timestamp, members with subscription and assignment)
//
// A nil value is a tombstone (offset deleted or expired; group deleted). When a metadata
// image no longer has a topic under the topic id the previous image had (deleted, or
// recreated under the same name), every loaded shard writes tombstones for the groups'
// offsets of it, as Kafka's coordinator does on partition deletion. Group metadata is
// written when a rebalance completes (with the leader's assignment, before it is handed
// out), when a group becomes empty, and when a static member is replaced. Each write is one
// uncompressed v2 batch without producer id, appended with the partition leader's
// AppendAsLeader; a commit is acknowledged only after its append succeeded. Replay reads
// from the log start to the log end it takes when the load starts (never past it),
// decompresses batches if needed and skips records of unknown key versions (Kafka's newer
// coordinator records).
//
// # Transactional offsets
//
// A TxnOffsetCommit is one transactional batch of the producer (txn_offsets.go). Its offsets
// stay pending per producer until the transaction's marker (a control batch the partition
// leader appends for WriteTxnMarkers) applies them (COMMIT) or drops them (ABORT); replay
// does the same with the batches and markers it reads. The rules are Kafka's
// (OffsetMetadataManager): at a commit a pending offset replaces the committed one only if its
// record is the later one (offsetEntry.order); a tombstone deletes the pending offsets of its
// key too; expiry keeps an offset with a pending one and a group with an open transaction.
// A marker that arrives while the partition loads is kept and applied after the load unless
// the replay read it.
//
// # Concurrency
//
// Lock order: Coordinator.mu (the partition table) is never held while taking a partition's
// lock; partition.mu (one per coordinator partition: its shard and timers) → the partition
// log's locks (through AppendAsLeader). Timer callbacks take partition.mu. Waiting requests
// never hold a lock: they wait on a channel their done callback fills.
//
// Goroutines: one loader per partition being loaded (it replays the log, then takes the
// lock to install the shard); timers are time.AfterFunc callbacks. Close stops both.
package group
