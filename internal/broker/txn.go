package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/controller"
	"github.com/samsa-io/samsa/internal/group"
	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/replica"
	"github.com/samsa-io/samsa/internal/txn"
)

// The transaction coordinator's APIs (the state machine is internal/txn's Shard, the runtime
// its Coordinator): InitProducerId with a transactional id (cluster.go hands it here),
// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions, ListTransactions, and
// the partition leader's check of transactional produce (TxnVerifier).
//
// The versions include transaction.version 2's (KIP-890 part 2: AddPartitionsToTxn v5 from
// partition leaders, AddOffsetsToTxn v4, EndTxn v5 with the epoch bumped at every end;
// Produce v12 in produce.go, TxnOffsetCommit v5 in txn_offsets.go). Clients use them when the
// cluster finalizes transaction.version 2 (ApiVersions' finalized features).
func init() {
	register(kmsg.AddPartitionsToTxn.Int16(), 0, 5, handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn.Int16(), 0, 4, handleAddOffsetsToTxn)
	register(kmsg.EndTxn.Int16(), 0, 5, handleEndTxn)
	register(kmsg.DescribeTransactions.Int16(), 0, 0, handleDescribeTransactions)
	register(kmsg.ListTransactions.Int16(), 0, 1, handleListTransactions)
}

// newTxnCoordinator builds the broker's transaction coordinator from its settings. It creates
// __transaction_state through the controller when first needed and sends markers through
// sendTxnMarkers.
func newTxnCoordinator(b *Broker) *txn.Coordinator {
	return txn.NewCoordinator(txn.CoordinatorConfig{
		NodeID:            b.cfg.NodeID,
		Settings:          txnSettings(b.cfg, nil),
		ReplicationFactor: internalReplicationFactor(b.cfg, "transaction.state.log.replication.factor"),
		ProducerIDs:       b.nextProducerID,
		Logger:            b.log.With("component", "transactions"),
		SendMarkers:       b.sendTxnMarkers,
		CreateTopic: func(ctx context.Context, n int32, rf int16, configs map[string]string) error {
			return b.createInternalTopic(ctx, txn.TopicName, n, rf, configs)
		},
	})
}

// txnSettings reads the coordinator's broker settings (Kafka's names and defaults) and, from
// img, the finalized transaction.version and the partition count of __consumer_offsets.
func txnSettings(cfg *config.Server, img *metadata.Image) txn.Settings {
	s := txn.DefaultSettings()
	ms := func(name string, def time.Duration) time.Duration {
		return time.Duration(optionalSetting(cfg, name, def.Milliseconds())) * time.Millisecond
	}
	s.MaxTimeout = ms("transaction.max.timeout.ms", s.MaxTimeout)
	s.TransactionalIDExpiration = ms("transactional.id.expiration.ms", s.TransactionalIDExpiration)
	s.AbortTimedOutInterval = ms("transaction.abort.timed.out.transaction.cleanup.interval.ms", s.AbortTimedOutInterval)
	s.RemoveExpiredInterval = ms("transaction.remove.expired.transaction.cleanup.interval.ms", s.RemoveExpiredInterval)
	s.StateLogNumPartitions = int32(optionalSetting(cfg, "transaction.state.log.num.partitions", int64(s.StateLogNumPartitions)))
	s.StateLogReplicationFactor = internalReplicationFactor(cfg, "transaction.state.log.replication.factor")
	s.StateLogSegmentBytes = int32(optionalSetting(cfg, "transaction.state.log.segment.bytes", int64(s.StateLogSegmentBytes)))
	s.StateLogMinISR = int32(optionalSetting(cfg, "transaction.state.log.min.isr", int64(s.StateLogMinISR)))
	s.OffsetsTopicNumPartitions = int32(optionalSetting(cfg, "offsets.topic.num.partitions", int64(s.OffsetsTopicNumPartitions)))
	s.TransactionVersion = txn.TV0
	if img != nil {
		s.TransactionVersion = txn.TransactionVersion(img.Features[controller.FeatureTransactionVersion])
		if t, ok := img.Topic(group.OffsetsTopic); ok {
			s.OffsetsTopicNumPartitions = int32(len(t.Partitions))
		}
	}
	return s
}

// internalReplicationFactor is the replication factor of an internal topic: unset, Kafka's 3
// in a cluster and 1 on a single node (as offsets.topic.replication.factor).
func internalReplicationFactor(cfg *config.Server, name string) int16 {
	if _, set := cfg.Explicit[name]; !set && !cfg.SingleNode() {
		return 3
	}
	return int16(optionalSetting(cfg, name, 1))
}

// nextProducerID hands out a producer id from the controller's blocks (InitProducerId).
func (b *Broker) nextProducerID() (int64, error) {
	b.pids.mu.Lock()
	defer b.pids.mu.Unlock()
	if b.pids.next >= b.pids.end {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		first, err := b.ctrl.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			var ke *kerr.Error
			if errors.As(err, &ke) {
				return 0, ke
			}
			return 0, kerr.CoordinatorLoadInProgress // Kafka's answer while no block is available
		}
		b.pids.next, b.pids.end = first, first+producerIDBlock
	}
	id := b.pids.next
	b.pids.next++
	return id, nil
}

// txnMetadataApplied follows the image: settings, then the partitions of __transaction_state
// this broker leads.
func (b *Broker) txnMetadataApplied(img *metadata.Image) {
	b.txns.SetSettings(txnSettings(b.cfg, img))
	b.txns.ApplyImage(img, b.replicas.Partition)
}

// txnInitProducerID answers InitProducerId with a transactional id.
func (b *Broker) txnInitProducerID(r *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	out := b.txns.Do(*r.TransactionalID, func(s *txn.Shard, now time.Time) txn.Result {
		return s.InitProducerID(now, txn.InitProducerIDRequest{TransactionalID: *r.TransactionalID,
			TransactionTimeoutMs: r.TransactionTimeoutMillis, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch})
	})
	resp.ProducerID, resp.ProducerEpoch = out.ProducerID, out.ProducerEpoch
	if out.Err != nil {
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		resp.ErrorCode = errCode(txn.ClientError(kmsg.InitProducerID.Int16(), r.Version, out.Err))
	}
}

func handleAddPartitionsToTxn(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version < 4 {
		var tps []txn.TopicPartition
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		errs := b.authorizeAddPartitions(req, r.TransactionalID, tps)
		if errs == nil {
			errs = b.addPartitions(r.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, false, tps)
		}
		for _, t := range r.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition = p
				rp.ErrorCode = errCode(errs[txn.TopicPartition{Topic: t.Topic, Partition: p}])
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	// v4+ comes from partition leaders (KIP-890): CLUSTER_ACTION, as Kafka.
	if !b.authorizeCluster(req, kmsg.ACLOperationClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, tr := range r.Transactions {
		var tps []txn.TopicPartition
		for _, t := range tr.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		errs := b.addPartitions(r.Version, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly, tps)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tr.TransactionalID
		for _, t := range tr.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition = p
				rp.ErrorCode = errCode(errs[txn.TopicPartition{Topic: t.Topic, Partition: p}])
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

// authorizeAddPartitions checks a client's AddPartitionsToTxn (v0-3) as Kafka does: without
// WRITE on the transactional id every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
// without WRITE on a topic its partitions get TOPIC_AUTHORIZATION_FAILED and the others
// OPERATION_NOT_ATTEMPTED. nil when everything is allowed.
func (b *Broker) authorizeAddPartitions(req *request, id string, tps []txn.TopicPartition) map[txn.TopicPartition]error {
	errs := make(map[txn.TopicPartition]error, len(tps))
	if !b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, id) {
		for _, tp := range tps {
			errs[tp] = kerr.TransactionalIDAuthorizationFailed
		}
		return errs
	}
	denied := false
	for _, tp := range tps {
		if !b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, tp.Topic) {
			errs[tp], denied = kerr.TopicAuthorizationFailed, true
		}
	}
	if !denied {
		return nil
	}
	for _, tp := range tps {
		if errs[tp] == nil {
			errs[tp] = kerr.OperationNotAttempted
		}
	}
	return errs
}

// addPartitions adds (or with verifyOnly checks) partitions of a transaction and answers per
// partition. Unknown topics or partitions are UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED, as Kafka.
func (b *Broker) addPartitions(version int16, id string, pid int64, epoch int16, verifyOnly bool, tps []txn.TopicPartition) map[txn.TopicPartition]error {
	errs := make(map[txn.TopicPartition]error, len(tps))
	img := b.ctrl.Image()
	unknown := false
	for _, tp := range tps {
		t, ok := img.Topic(tp.Topic)
		if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			errs[tp] = kerr.UnknownTopicOrPartition
			unknown = true
		}
	}
	if unknown {
		for _, tp := range tps {
			if errs[tp] == nil {
				errs[tp] = kerr.OperationNotAttempted
			}
		}
		return errs
	}
	if verifyOnly {
		err := b.txns.Read(id, func(s *txn.Shard) { errs = s.VerifyPartitions(id, pid, epoch, tps) })
		if err != nil {
			for _, tp := range tps {
				errs[tp] = err
			}
		}
		return errs
	}
	out := b.txns.Do(id, func(s *txn.Shard, now time.Time) txn.Result {
		return s.AddPartitions(now, id, pid, epoch, tps, versionTV(version, 5))
	})
	for _, tp := range tps {
		errs[tp] = txn.ClientError(kmsg.AddPartitionsToTxn.Int16(), version, out.Err)
	}
	return errs
}

func handleAddOffsetsToTxn(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	out := b.txns.Do(r.TransactionalID, func(s *txn.Shard, now time.Time) txn.Result {
		return s.AddOffsets(now, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, versionTV(r.Version, 4))
	})
	resp.ErrorCode = errCode(txn.ClientError(kmsg.AddOffsetsToTxn.Int16(), r.Version, out.Err))
	return resp, nil
}

func handleEndTxn(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	out := b.txns.Do(r.TransactionalID, func(s *txn.Shard, now time.Time) txn.Result {
		return s.EndTxn(now, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit, versionTV(r.Version, 5))
	})
	resp.ErrorCode = errCode(txn.ClientError(kmsg.EndTxn.Int16(), r.Version, out.Err))
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if out.Err == nil && r.Version >= 5 {
		// The producer id and epoch the client goes on with (the epoch bumped by this end).
		resp.ProducerID, resp.ProducerEpoch = out.ProducerID, out.ProducerEpoch
	}
	return resp, nil
}

// versionTV is the transaction version a request of version v speaks: TV2 from tv2, the
// first version of the API that transaction.version 2 clients send (KIP-890 part 2).
func versionTV(v, tv2 int16) txn.TransactionVersion {
	if v >= tv2 {
		return txn.TV2
	}
	return txn.TV0
}

func handleDescribeTransactions(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		var d txn.Description
		if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id) {
			d.Err = kerr.TransactionalIDAuthorizationFailed
		} else if err := b.txns.Read(id, func(s *txn.Shard) { d = s.Describe(id) }); err != nil {
			d.Err = err
		}
		if d.Err != nil {
			st.ErrorCode = errCode(d.Err)
		} else {
			st.State, st.TimeoutMillis, st.StartTimestamp = d.State, d.TransactionTimeoutMs, d.StartTimestamp
			st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
			groupByTopic(d.Partitions, func(topic string, ps []int32) {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic, t.Partitions = topic, ps
				st.Topics = append(st.Topics, t)
			})
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func handleListTransactions(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.ListTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	minDuration := int64(-1)
	if r.Version >= 1 {
		minDuration = r.DurationFilterMillis
	}
	now := b.now()
	var unknown []string
	loading := b.txns.Each(func(s *txn.Shard) {
		list, u, err := s.List(now, r.StateFilters, r.ProducerIDFilters, minDuration)
		if err != nil {
			return
		}
		unknown = u
		for _, l := range list {
			// Only the ids the principal may DESCRIBE are listed (Kafka's rule).
			if !b.authorize(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, l.TransactionalID) {
				continue
			}
			st := kmsg.NewListTransactionsResponseTransactionState()
			st.TransactionalID, st.ProducerID, st.TransactionState = l.TransactionalID, l.ProducerID, l.State
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
	})
	if unknown == nil {
		for _, name := range r.StateFilters {
			if _, ok := txn.ParseState(name); !ok {
				unknown = append(unknown, name)
			}
		}
	}
	resp.UnknownStateFilters = unknown
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	return resp, nil
}

// sendTxnMarkers is the coordinator's marker sender: the partitions this broker leads get
// their markers in process, the others one WriteTxnMarkers request per leader (the
// coordinator retries what fails).
func (b *Broker) sendTxnMarkers(ctx context.Context, m txn.MarkerRequest, tps []txn.TopicPartition) map[txn.TopicPartition]error {
	out := make(map[txn.TopicPartition]error, len(tps))
	remote := map[int32][]txn.TopicPartition{}
	img := b.ctrl.Image()
	marker := records.EndTxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
		CoordinatorEpoch: m.CoordinatorEpoch, Commit: m.Commit}
	for _, tp := range tps {
		t, ok := img.Topic(tp.Topic)
		if !ok || int(tp.Partition) >= len(t.Partitions) {
			out[tp] = nil // a deleted topic: Kafka drops its marker
			continue
		}
		switch leader := t.Partitions[tp.Partition].Leader; leader {
		case b.cfg.NodeID:
			out[tp] = b.writeMarker(ctx, tp.Topic, tp.Partition, marker)
		case -1:
			out[tp] = kerr.NotLeaderForPartition
		default:
			remote[leader] = append(remote[leader], tp)
		}
	}
	for leader, tps := range remote {
		b.sendRemoteMarkers(ctx, leader, m, tps, out)
	}
	return out
}

// writeMarker appends a marker as the partition's leader and waits for the ISR, as
// WriteTxnMarkers does for one partition.
func (b *Broker) writeMarker(ctx context.Context, topic string, partition int32, marker records.EndTxnMarker) error {
	p, kerrv := b.partitionFor(topic, partition)
	if kerrv != nil {
		return kerrv
	}
	res, err := p.AppendAsLeader(marker.Batch(b.now().UnixMilli()))
	if err != nil {
		return storageErr(err)
	}
	if p.Replicated() {
		ctx, cancel := context.WithTimeout(ctx, markerReplicationTimeout)
		defer cancel()
		if err := p.WaitReplicated(ctx, res.LastOffset+1, 1, ctx.Done()); err != nil {
			return storageErr(err)
		}
	}
	b.completeOffsetsTxn(topic, partition, marker.ProducerID, marker.Commit, res.LastOffset)
	return nil
}

// coordinatorVerifier is the broker's TxnVerifier: before a transactional batch is appended
// the coordinator of its transactional id must have the partition in the producer's ongoing
// transaction (AddPartitionsToTxn v0-v3 clients add partitions themselves; KIP-890 part 1
// verification), or, for a transaction.version 2 client (add), adds it (KIP-890 part 2). It
// asks for every batch, without a cache: in process when this broker is the coordinator,
// else AddPartitionsToTxn v4+ to it (verifyOnly unless add).
type coordinatorVerifier struct{ b *Broker }

func (v coordinatorVerifier) VerifyTransaction(tp replica.TopicPartition, transactionalID string, producerID int64, producerEpoch int16, add bool) error {
	if transactionalID == "" {
		return kerr.InvalidTxnState
	}
	want := txn.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
	// CONCURRENT_TRANSACTIONS: the producer's previous transaction is still completing (its
	// markers are being written, which EndTxn does not wait for; in process that takes well
	// under a millisecond). As Kafka's leaders do, ask again for up to
	// add.partitions.to.txn.retry.backoff.max.ms before the producer gets the error; the
	// waits start at 1 ms and double up to add.partitions.to.txn.retry.backoff.ms (Kafka
	// waits that long every time), so a transaction that follows its predecessor at once is
	// not held 20 ms.
	maxStep := time.Duration(optionalSetting(v.b.cfg, "add.partitions.to.txn.retry.backoff.ms", 20)) * time.Millisecond
	total := time.Duration(optionalSetting(v.b.cfg, "add.partitions.to.txn.retry.backoff.max.ms", 100)) * time.Millisecond
	err := retryConcurrent(v.b.ctx, maxStep, total, func() error {
		return v.ask(want, transactionalID, producerID, producerEpoch, add)
	})
	if errors.Is(err, context.Canceled) {
		return kerr.NotEnoughReplicas
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ProducerFenced):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, kerr.TransactionAbortable), errors.Is(err, kerr.InvalidProducerIDMapping):
		return kerr.InvalidTxnState
	case errors.Is(err, kerr.NotCoordinator), errors.Is(err, kerr.CoordinatorLoadInProgress),
		errors.Is(err, kerr.CoordinatorNotAvailable), errors.Is(err, kerr.ConcurrentTransactions):
		// Kafka's answer to a produce whose verification could not complete: retriable.
		return kerr.NotEnoughReplicas
	}
	return err
}

// retryConcurrent calls ask until it answers anything but CONCURRENT_TRANSACTIONS, waiting
// 1 ms, then twice as long each time up to maxStep, for at most total; it returns ask's last
// answer, or ctx's error when ctx ends first.
func retryConcurrent(ctx context.Context, maxStep, total time.Duration, ask func() error) error {
	deadline := time.Now().Add(total)
	err := ask()
	for step := min(time.Millisecond, maxStep); errors.Is(err, kerr.ConcurrentTransactions) && time.Now().Add(step).Before(deadline); step = min(2*step, maxStep) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
		err = ask()
	}
	return err
}

// ask checks (or with add, adds) want in the producer's transaction once: in process when
// this broker is the coordinator, else AddPartitionsToTxn to it.
func (v coordinatorVerifier) ask(want txn.TopicPartition, transactionalID string, producerID int64, producerEpoch int16, add bool) error {
	if coord, local := v.b.txnCoordinatorNode(transactionalID); !local && coord >= 0 {
		return v.b.verifyRemote(coord, want, transactionalID, producerID, producerEpoch, add)
	}
	if add {
		out := v.b.txns.Do(transactionalID, func(s *txn.Shard, now time.Time) txn.Result {
			return s.AddPartitions(now, transactionalID, producerID, producerEpoch, []txn.TopicPartition{want}, txn.TV2)
		})
		return out.Err
	}
	var errs map[txn.TopicPartition]error
	err := v.b.txns.Read(transactionalID, func(s *txn.Shard) {
		errs = s.VerifyPartitions(transactionalID, producerID, producerEpoch, []txn.TopicPartition{want})
	})
	if err == nil {
		err = errs[want]
	}
	return err
}

// txnCoordinatorNode returns the leader of a transactional id's __transaction_state
// partition in the image (-1 when the topic or its leader is missing) and whether it is
// this broker.
func (b *Broker) txnCoordinatorNode(transactionalID string) (int32, bool) {
	t, ok := b.ctrl.Image().Topic(txn.TopicName)
	if !ok || len(t.Partitions) == 0 {
		return -1, false
	}
	leader := t.Partitions[txn.PartitionFor(transactionalID, int32(len(t.Partitions)))].Leader
	return leader, leader == b.cfg.NodeID
}

// groupByTopic calls fn with each run of partitions of one topic in tps (sorted by topic, as
// the coordinator keeps them).
func groupByTopic(tps []txn.TopicPartition, fn func(topic string, partitions []int32)) {
	for i := 0; i < len(tps); {
		j := i
		var ps []int32
		for ; j < len(tps) && tps[j].Topic == tps[i].Topic; j++ {
			ps = append(ps, tps[j].Partition)
		}
		fn(tps[i].Topic, ps)
		i = j
	}
}
