package server

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/replica"
)

// isrSender sends a leader's ISR changes to the active controller as AlterPartition requests
// (replica.PartitionStateSender). It never waits for this node's own metadata: the replica
// manager applies the change when the image brings it.
type isrSender struct {
	client *controllerClient
	nodeID int32
	epoch  func() int64
}

var _ replica.PartitionStateSender = (*isrSender)(nil)

func (s *isrSender) AlterPartition(ctx context.Context, r replica.AlterPartitionRequest) (replica.AlterPartitionResult, error) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = s.nodeID, s.epoch()
	t := kmsg.NewAlterPartitionRequestTopic()
	t.TopicID, t.Topic = r.TopicID, r.Topic
	p := kmsg.NewAlterPartitionRequestTopicPartition()
	p.Partition, p.LeaderEpoch, p.PartitionEpoch = r.Partition, r.LeaderEpoch, r.PartitionEpoch
	p.NewISR = r.NewISR
	for _, id := range r.NewISR {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, -1
		p.NewEpochISR = append(p.NewEpochISR, e)
	}
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := s.client.request(ctx, req, func(r kmsg.Response) bool {
		return r.(*kmsg.AlterPartitionResponse).ErrorCode == kerr.NotController.Code
	})
	if err != nil {
		return replica.AlterPartitionResult{}, err
	}
	ar := resp.(*kmsg.AlterPartitionResponse)
	if ar.ErrorCode != 0 {
		return replica.AlterPartitionResult{ErrorCode: ar.ErrorCode}, nil
	}
	if len(ar.Topics) != 1 || len(ar.Topics[0].Partitions) != 1 {
		return replica.AlterPartitionResult{}, errors.New("AlterPartition: the controller answered for other partitions")
	}
	rp := ar.Topics[0].Partitions[0]
	return replica.AlterPartitionResult{ErrorCode: rp.ErrorCode, Leader: rp.LeaderID, LeaderEpoch: rp.LeaderEpoch,
		PartitionEpoch: rp.PartitionEpoch, ISR: rp.ISR}, nil
}
