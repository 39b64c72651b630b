// Package txn owns the transaction coordinator's state machine: Kafka's
// TransactionCoordinator, TransactionStateManager and TransactionMetadata logic for the
// transactional ids whose state lives in the internal compacted topic __transaction_state.
// It answers InitProducerId (with a transactional id), AddPartitionsToTxn (the v3 client
// form and the v4+ batched form, including verifyOnly for KIP-890 part 1), AddOffsetsToTxn,
// EndTxn (before TV2 and with TV2's epoch bump per transaction, KIP-890 part 2),
// DescribeTransactions and ListTransactions, aborts timed-out transactions, expires idle
// transactional ids and drives the transaction markers to completion.
//
// # Structure
//
// A Shard is the deterministic state machine of one __transaction_state partition: the ids
// that hash to it (PartitionFor, Kafka's abs(transactionalId.hashCode) % partitions, the
// group coordinator's function). It performs no I/O, reads no clock and starts no
// goroutine: every operation takes the time, and answers with a Result that either holds
// the response or a Write, the records to append. The runtime appends the Write and calls
// Shard.Appended with the append's error; the Outcome holds the response and the follow-up
// actions: WriteTxnMarkers requests to send (MarkerRequest: producer id, epoch, coordinator
// epoch, commit or abort, partitions), and further Writes (the completion record, or its
// retry). Each marker answer goes to Shard.MarkerWritten, which returns the completion
// record once every partition has its marker. While a Write of an id is outstanding its
// transition is pending (Kafka's pendingState) and other requests on the id get
// CONCURRENT_TRANSACTIONS, so the runtime may append asynchronously.
//
// The files: settings.go (Settings with Kafka's names and defaults, states, transaction
// versions, PartitionFor), metadata.go (per-id metadata and Kafka's transitions),
// records.go (the record format), shard.go (loading, appends, markers, timeouts,
// expiration), ops.go (the request handlers).
//
// # Records
//
// __transaction_state holds Kafka's own formats (kmsg's TxnMetadataKey / TxnMetadataValue),
// so a log written by Samsa reads like Kafka's and the reverse:
//
//	key   version 0  TransactionLogKey{transactional id}
//	value version 0  TransactionLogValue{producer id, producer epoch, timeout ms, state,
//	                 partitions per topic (null when Empty), last update ms, start ms}
//	value version 1  the same, flexible, with tagged fields PreviousProducerId (0),
//	                 NextProducerId (1), ClientTransactionVersion (2) (KIP-890)
//
// The value version follows the transaction.version feature (Settings.TransactionVersion):
// 0 below TV1, else 1. A nil value is a tombstone (an expired id). Kafka does not persist
// the last producer epoch; neither does Samsa, so a loaded id has -1 there. Replay skips
// records of unknown key or value versions, as Kafka's loader does. The coordinator epoch
// carried by markers is the partition's leader epoch when the shard was loaded.
//
// # What the runtime (network wiring) provides
//
//   - Log appends: each Write's records as one uncompressed batch appended with acks=all
//     through the replica manager (min ISR transaction.state.log.min.isr), the error passed
//     to Appended as a *kerr.Error (NOT_LEADER_OR_FOLLOWER when leadership moved).
//   - Loading: when this broker becomes leader of a partition, a NewShard at the leader
//     epoch, Replay of every record from the log start to the high watermark, FinishLoad
//     (which resumes the markers of transactions found in PrepareCommit/PrepareAbort:
//     coordinator failover mid-commit); dropping the shard when leadership moves.
//   - A WriteTxnMarkers sender: per partition leader, retried as MarkerWritten says; the
//     client's request versions and ClientError for old clients' error codes.
//   - Producer ids through the controller's AllocateProducerIds blocks (ProducerIDs).
//   - The clock: AbortTimedOut every transaction.abort.timed.out.transaction.cleanup.interval.ms
//     and ExpireTransactionalIDs every transaction.remove.expired.transaction.cleanup.interval.ms,
//     their Writes appended like any other; the time passed to every call.
//   - InitProducerId without a transactional id (idempotent producers) does not reach a
//     shard: any broker answers it with a new producer id at epoch 0.
package txn
