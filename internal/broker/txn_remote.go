package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/txn"
)

// The transaction coordinator's requests to other brokers: WriteTxnMarkers to the leaders of
// a transaction's partitions, and AddPartitionsToTxn v4 verifyOnly from a partition leader to
// the coordinator of a transactional id. Each goes over a kgo client to the broker's
// inter-broker listener, one client per broker, kept until the broker closes.

// interBrokerTimeout bounds one request to another broker.
const interBrokerTimeout = 30 * time.Second

type brokerClients struct {
	mu      sync.Mutex
	clients map[int32]*brokerClient
}

type brokerClient struct {
	addr string
	cl   *kgo.Client
}

// peer returns the client of broker id (its inter-broker listener in the current image).
func (b *Broker) peer(id int32) (*kgo.Client, error) {
	addr := b.replicas.BrokerAddr(b.ctrl.Image(), id)
	if addr == "" {
		return nil, kerr.BrokerNotAvailable
	}
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	if b.ctx.Err() != nil {
		return nil, kerr.BrokerNotAvailable
	}
	if c := b.peers.clients[id]; c != nil {
		if c.addr == addr {
			return c.cl, nil
		}
		c.cl.Close()
		delete(b.peers.clients, id)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("samsa-txn"), kgo.RequestRetries(0),
		kgo.DialTimeout(5 * time.Second)}, b.interBrokerOpts...)...)
	if err != nil {
		return nil, err
	}
	if b.peers.clients == nil {
		b.peers.clients = make(map[int32]*brokerClient)
	}
	b.peers.clients[id] = &brokerClient{addr: addr, cl: cl}
	return cl, nil
}

// closePeers closes the inter-broker clients (broker Close).
func (b *Broker) closePeers() {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	for id, c := range b.peers.clients {
		c.cl.Close()
		delete(b.peers.clients, id)
	}
}

// sendRemoteMarkers sends one WriteTxnMarkers request with m's marker for tps to broker
// leader and returns each partition's answer (all failed with the request's error).
func (b *Broker) sendRemoteMarkers(ctx context.Context, leader int32, m txn.MarkerRequest, tps []txn.TopicPartition, out map[txn.TopicPartition]error) {
	fail := func(err error) {
		for _, tp := range tps {
			out[tp] = err
		}
	}
	cl, err := b.peer(leader)
	if err != nil {
		fail(kerr.NotLeaderForPartition)
		return
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.CoordinatorEpoch, rm.Committed = m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch, m.Commit
	groupByTopic(tps, func(topic string, ps []int32) {
		rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		rt.Topic, rt.Partitions = topic, ps
		rm.Topics = append(rm.Topics, rt)
	})
	req.Markers = append(req.Markers, rm)
	ctx, cancel := context.WithTimeout(ctx, interBrokerTimeout)
	defer cancel()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		fail(kerr.NotLeaderForPartition) // retried
		return
	}
	fail(kerr.UnknownServerError) // partitions missing from the answer are retried
	for _, am := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, at := range am.Topics {
			for _, ap := range at.Partitions {
				tp := txn.TopicPartition{Topic: at.Topic, Partition: ap.Partition}
				if _, ok := out[tp]; ok {
					out[tp] = kerr.ErrorForCode(ap.ErrorCode)
				}
			}
		}
	}
}

// verifyRemote asks broker coordinator whether tp is in the producer's ongoing transaction
// (AddPartitionsToTxn v4 verifyOnly, KIP-890 part 1).
func (b *Broker) verifyRemote(coordinator int32, tp txn.TopicPartition, id string, pid int64, epoch int16, add bool) error {
	cl, err := b.peer(coordinator)
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = id, pid, epoch, !add
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = tp.Topic, []int32{tp.Partition}
	tr.Topics = append(tr.Topics, tt)
	req.Transactions = append(req.Transactions, tr)
	ctx, cancel := context.WithTimeout(b.ctx, interBrokerTimeout)
	defer cancel()
	kresp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	for _, rtx := range resp.Transactions {
		for _, rt := range rtx.Topics {
			for _, rp := range rt.Partitions {
				if rt.Topic == tp.Topic && rp.Partition == tp.Partition {
					return kerr.ErrorForCode(rp.ErrorCode)
				}
			}
		}
	}
	return kerr.CoordinatorNotAvailable
}
