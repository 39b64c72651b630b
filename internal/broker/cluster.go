package broker

import (
	"path/filepath"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
	"github.com/samsa-io/samsa/internal/wire"
)

// The cluster-description APIs: DescribeCluster and DescribeLogDirs, and InitProducerId.
func init() {
	register(kmsg.DescribeCluster.Int16(), 0, 1, handleDescribeCluster)
	register(kmsg.DescribeLogDirs.Int16(), 1, 4, handleDescribeLogDirs)
	register(kmsg.InitProducerID.Int16(), 0, 4, handleInitProducerID)
}

func handleDescribeCluster(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := b.ctrl.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.EndpointType = 1
	resp.ClusterAuthorizedOperations = authorizedOperationsOmitted
	if req.conn.controllerPort {
		// A controller answers for controllers (KIP-919); Kafka's controllers refuse
		// EndpointType 1 (brokers) there.
		if r.Version < 1 || r.EndpointType != 2 {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			return resp, nil
		}
		b.describeControllers(resp)
		return resp, nil
	}
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.clusterAuthorizedOperations(req)
	}
	for _, mb := range brokerList(img, req.conn.listener) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp, nil
}

func handleDescribeLogDirs(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	abs, err := filepath.Abs(b.cfg.LogDirs[0])
	if err != nil {
		abs = b.cfg.LogDirs[0]
	}
	dir.Dir = abs
	dir.TotalBytes, dir.UsableBytes, _ = storage.DiskUsage(abs) // -1, -1 when statfs fails
	want := map[string]map[int32]bool{}
	for _, t := range r.Topics {
		m := map[int32]bool{}
		for _, p := range t.Partitions {
			m[p] = true
		}
		want[t.Topic] = m
	}
	byTopic := map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition{}
	nowMs := b.now().UnixMilli()
	for _, p := range b.replicas.Partitions() {
		if r.Topics != nil && !want[p.TP.Topic][p.TP.Partition] {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.TP.Partition
		dp.Size = p.Log().Size()
		dp.OffsetLag = p.Log().LogEndOffset() - p.HighWatermark()
		if r.Version >= 2 {
			// Samsa's tagged field: the cleaner's state of a compacted log (DESIGN.md).
			if st := p.Log().CleanableState(nowMs, p.CleanUpperBound()); st.Compact {
				dp.UnknownTags.Set(wire.CleanerStateTag, wire.EncodeCleanerState(wire.CleanerState{
					FirstDirtyOffset: st.FirstDirtyOffset, DirtyRatio: st.DirtyRatio,
					CleanableBytes: st.CleanableBytes, TotalBytes: st.TotalBytes,
					Uncleanable: b.replicas.UncleanableReason(p)}))
			}
		}
		byTopic[p.TP.Topic] = append(byTopic[p.TP.Topic], dp)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = n
		dt.Partitions = byTopic[n]
		sort.Slice(dt.Partitions, func(i, j int) bool { return dt.Partitions[i].Partition < dt.Partitions[j].Partition })
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// producerIDBlock is the size of the producer-id range a broker takes from the controller at a
// time, as Kafka's brokers do, so InitProducerId rarely waits for a metadata commit.
const producerIDBlock = 1000

// producerIDs hands out producer ids from blocks allocated by the controller.
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

func handleInitProducerID(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// A transactional producer needs WRITE on its transactional id; an idempotent one
	// IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
	if r.TransactionalID != nil && !b.authorize(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *r.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if r.TransactionalID == nil && !b.authorizeCluster(req, kmsg.ACLOperationIdempotentWrite) && !b.authorizeAnyTopicWrite(req) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if r.TransactionalID != nil {
		b.txnInitProducerID(r, resp)
		return resp, nil
	}
	id, err := b.nextProducerID()
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
