// Package consumer is the state machine of "consumer"-type groups: the consumer group
// protocol of KIP-848 (Kafka 4.x), driven by ConsumerGroupHeartbeat. It does no I/O and reads
// no clock: every operation takes the current time as an argument and returns the records to
// persist in __consumer_offsets. The coordinator runtime (package group) writes the records,
// schedules a timer for NextDeadline and calls Tick, and rebuilds a shard's state after a
// restart by calling Replay for every record of the partition and Loaded at the end.
//
// Members using the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) live in
// consumer groups too, as in Kafka 4.x's mixed groups (classic.go), and classic groups with
// members convert to consumer groups and back as group.consumer.migration.policy allows
// (migration.go).
//
// # Model
//
// A group has a group epoch, bumped whenever its membership, a member's subscription or the
// metadata of the subscribed topics (partition counts, topic ids) changes. For every group
// epoch the server-side assignor ("uniform", the default, or "range", chosen by the members'
// ServerAssignor) computes a target assignment. Each member then converges towards its target
// independently (incremental reconciliation): partitions it must give up are first revoked
// (the member keeps its epoch and reports, in later heartbeats, the partitions it still owns);
// partitions it must receive are handed out only once no other member owns them; when the
// member has nothing left to revoke its member epoch advances to the target assignment's
// epoch. Members that miss their session timeout, or that do not revoke within their
// rebalance timeout, are fenced.
//
// The state machine changes its state only by applying the records it emits: every handler
// computes records and applies each one with the same code that Replay uses, so a shard
// rebuilt from its records equals the live one. Soft state (session and rebalance deadlines,
// the "metadata may have changed" flag) is not persisted; Loaded re-arms it.
//
// # Records
//
// kmsg has no types for Kafka's KIP-848 records (ConsumerGroupMetadata, …MemberMetadata,
// …TargetAssignmentMetadata, …TargetAssignmentMember, …CurrentMemberAssignment), so Samsa
// persists the same model with its own encoding. A record's key starts with a big-endian
// int16 record type, like Kafka's __consumer_offsets keys, whose types 0 and 1 are offset
// commits and 2 is classic group metadata, and whose types 3 to 30 Kafka uses for its own
// KIP-848, share and streams records. Samsa's consumer-group records use types 100 to 104,
// so that neither Samsa's classic loader nor a Kafka tool can mistake one for a record it
// knows:
//
//	type 100  group metadata       key: group             value: group epoch, metadata hash
//	type 101  member metadata      key: group, member id  value: subscription and client data
//	type 102  target assignment    key: group             value: target assignment epoch
//	type 103  member target        key: group, member id  value: the member's target partitions
//	type 104  current assignment   key: group, member id  value: member epoch, previous epoch,
//	                                                      state, assigned partitions,
//	                                                      partitions pending revocation
//
// Keys: int16 type, then the group id and (types 101, 103, 104) the member id, each as an
// int16 length followed by UTF-8 bytes (Kafka's STRING). Values start with an int16 value
// version (0 today); a nil value is a tombstone. Inside values, strings are a uvarint length
// and bytes, string lists a uvarint count and strings, integers are big-endian, and an
// assignment is a uvarint topic count, then per topic the 16-byte topic id, a uvarint
// partition count and int32 partitions in increasing order. Decoders check every length
// against the bytes left before allocating and reject trailing bytes.
//
// Value layouts (version 0; a member using the classic protocol has a version 1 member
// metadata value):
//
//	100: int32 group epoch, int64 metadata hash
//	101: string instance id ("" for none), string rack id, string client id, string client
//	     host, string list subscribed topic names, string subscribed regex ("" for none),
//	     string server assignor ("" for none), int32 rebalance timeout in ms; version 1 adds
//	     Kafka's ClassicMemberMetadata: int32 session timeout in ms, then a uvarint count of
//	     the JoinGroup's protocols, each a string name and a string (bytes) metadata
//	102: int32 assignment epoch
//	103: assignment
//	104: int32 member epoch, int32 previous member epoch, int8 state (0 stable, 1 unrevoked
//	     partitions, 2 unreleased partitions), assignment assigned, assignment pending
//	     revocation
//
// # Deviations from Kafka
//
//   - Regular expressions (RE2 syntax, Go's regexp, matched against the whole topic name) are
//     resolved synchronously against the topic view instead of by a background task, so no
//     regular-expression records are written: the resolution is a function of the topic
//     view, and a change of the view bumps the epoch of the groups it affects (through the
//     metadata hash) as it does in Kafka.
//   - A static member that rejoins (epoch 0) with the member id it already has is accepted
//     as a rejoin instead of being refused with UNRELEASED_INSTANCE_ID.
//   - A heartbeat with member epoch -2 (a static member leaving for now) without an instance
//     id, which Kafka refuses with INVALID_REQUEST, is accepted from a member that is static:
//     franz-go sends it so, and would otherwise hold its instance id until its session
//     expires. From any other member it is INVALID_REQUEST as in Kafka.
//   - A classic member's session after a coordinator failover is its own session timeout,
//     where Kafka uses the consumer groups' 45 s.
//   - Offset commits and fetches need the member's exact epoch (Kafka 4.0's rule); the
//     per-partition assignment epochs of KIP-1251, which let a commit from the previous
//     epoch through, are not implemented.
package consumer
