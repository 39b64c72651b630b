// Package controller owns the metadata quorum: the Raft-replicated metadata log, the state
// machine that turns it into metadata images (package metadata), and the operations that change
// it (creating and deleting topics, adding partitions, altering configs, registering brokers,
// allocating producer IDs, updating feature levels), including their validation and replica
// placement.
//
// # Features
//
// features.go holds the features (KIP-584) this node supports and their defaults, which Start
// commits on a new cluster and on a log written before features existed (no metadata.version),
// and UpdateFeatures, which follows Kafka 4.1's FeatureControlManager: all or nothing, the same
// checks in the same order and the same messages.
//
// # Raft
//
// The log is replicated with hashicorp/raft rather than etcd-io/raft because hashicorp/raft
// brings the transport, the log store (raft-boltdb, bbolt), snapshots and membership changes
// with it, so this package only writes the state machine. etcd-io/raft is a bare state machine
// that leaves networking, storage and the apply loop to the user.
//
// Layout of Config.Dir: raft.db (bbolt log and stable store), snapshots/ (file snapshot
// store) and metadata.reserve (below). Each Raft log entry is one metadata batch (metadata.EncodeBatch); a snapshot is one
// encoded image (metadata.EncodeImage). bbolt locks raft.db with flock; Start waits for that
// lock in short attempts, so it ends with its context and gives up after
// Config.StoreLockTimeout (the broker's directory lock normally refuses a second node earlier).
//
// A full disk: Config.Dir also holds metadata.reserve, a file of Config.ReserveBytes (64 MiB by
// default) allocated with fallocate at Start (as much as fits; what exists is kept). Every
// write of the Raft log and stable store goes through reservedStore: while bbolt fails with
// ENOSPC (its commit is rolled back) the reserve is shortened by 1 MiB and the write retried,
// so partition data filling a shared disk does not make Raft step down (a failed StoreLogs
// does) and metadata keeps working. Only a step at a time is released because data takes
// freed space too: what is left carries later episodes and a start on a full disk (the
// election and the broker registration write). A successful write grows the reserve back, at
// most every 30 s, once the filesystem has twice its size free. Raft snapshots that fail for
// lack of space are only retried by Raft.
//
// A static quorum is the voters of Config.Voters (controller.quorum.voters), each bootstrapping
// the same configuration on its first start, or this node alone (Config.Bootstrap). A dynamic
// quorum (Config.Dynamic, KIP-853, kraft.version 1) bootstraps its initial voters (Voters, with
// directory ids) and changes at run time: membership.go (observers join with
// RegisterController, AddVoter promotes one once caught up, RemoveVoter), progress.go (the
// leader's transport records each follower's match index, which hashicorp/raft keeps to
// itself). The controller listener (listener.go) carries Raft, announced by a preamble with the
// cluster id, and Kafka clients (KafkaListener). deadbrokers.go fences brokers whose process is
// gone.
//
// # The cluster state machine
//
// After Kafka's KRaft controller (ClusterControlManager, BrokerHeartbeatManager,
// ReplicationControlManager, PartitionChangeBuilder, StripedReplicaPlacer):
//
//   - brokers.go: RegisterBroker (a broker epoch = the log index of the RegisterBroker record;
//     a new incarnation is a new, fenced registration; the same incarnation is an idempotent
//     retry), BrokerHeartbeat (unfencing a caught-up broker, WantFence, controlled shutdown,
//     ShouldShutDown once it leads nothing), FenceExpiredBrokers and RunBrokerSessions (session
//     expiry), RegisterAndUnfence (the single-node server's in-process registration).
//   - election.go: pure leader election and the partition changes of fencing, controlled
//     shutdown and unfencing (metadata.PartitionChange records).
//   - placement.go: deterministic rack-aware placement of new replicas on usable brokers.
//   - partition_change.go: AlterPartition (a leader's ISR change) and ElectLeaders.
//   - reassign.go: partition reassignment (KIP-455): AlterPartitionReassignments,
//     ListPartitionReassignments and their kmsg handlers; AlterPartition completes a
//     reassignment when the ISR it commits allows it.
//   - handlers.go: the kmsg requests (BrokerRegistration, BrokerHeartbeat, AlterPartition,
//     ElectLeaders, ControllerRegistration, AddRaftVoter, RemoveRaftVoter) translated to the
//     typed operations, for the controller listener.
//
// Broker sessions (the time of each broker's last heartbeat) are in memory, on the active
// controller only, guarded by Controller.mu. They start afresh whenever the Raft term changes:
// every registered broker then has a full Config.BrokerSessionTimeout from that moment. The
// clock is Config.Now, so tests move time by hand. Session expiry runs in RunBrokerSessions, a
// goroutine the owner of the controller starts (and stops with its context); it checks every
// quarter of the session timeout (at most every second) and does nothing on a follower. Every
// pass, heartbeat or request that changes metadata commits its records in one proposal, each
// step computed against the image the previous steps lead to (recordPlan).
//
// # Concurrency
//
// Operations hold Controller.mu across read-image, validate, propose and wait-for-apply, so they
// are serialized and each one validates against the image its predecessor produced. Raft's FSM
// goroutine applies entries (fsm.Apply) and stores each new image in an atomic.Pointer, so
// Image never blocks. A publisher goroutine then calls the OnPublish callbacks in order.
//
// Goroutines: raft's own (run loop, FSM, snapshots, transport), stopped by Close; the
// publisher, which owns the callback list and is stopped by Close after Raft; and
// RunBrokerSessions when its owner runs it (it takes Controller.mu through
// FenceExpiredBrokers, and nothing else). Lock order: Controller.mu, then the publisher's
// queue lock (a leaf); the sessions live under Controller.mu. During Start a
// short-lived goroutine waits for the barrier (waitFuture) so that Start can return when its
// context ends; Close ends the barrier.
//
// Errors returned to callers wrap a franz-go *kerr.Error (see ErrorCode) and carry a message
// suitable for a response's ErrorMessage.
package controller
