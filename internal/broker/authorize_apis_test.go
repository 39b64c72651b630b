package broker_test

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/broker"
)

// apiAuthEnv is what the per-API requests name: topic t (partition 0, its id), group g (with
// a committed offset), transactional id tx (initialized).
type apiAuthEnv struct {
	topicID [16]byte
}

// apiAuthCase is how one API is refused to a principal without ACLs: the request to send,
// and refused, which tells from the answer whether it carries the API's authorization error
// (every API Samsa serves has an error field where Kafka puts its refusal, so a closed
// connection always fails).
type apiAuthCase struct {
	// open: Kafka checks nothing (ApiVersions, the SASL exchange, DescribeCluster); the
	// request is answered without error to anyone authenticated.
	open    bool
	req     func(env apiAuthEnv) kmsg.Request
	refused func(resp kmsg.Response) bool
}

func code(c int16, e *kerr.Error) bool { return c == e.Code }

// apiAuthCases, keyed by API key, covers every API a client listener serves
// (TestAPIAuthorizationEveryAPI fails for a served API without a case). Cases of APIs not
// served yet are skipped.
var apiAuthCases = map[int16]apiAuthCase{
	kmsg.ApiVersions.Int16():      {open: true},
	kmsg.SASLHandshake.Int16():    {open: true},
	kmsg.SASLAuthenticate.Int16(): {open: true},
	kmsg.DescribeCluster.Int16(): {open: true, req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrDescribeClusterRequest()
	}, refused: func(r kmsg.Response) bool { return r.(*kmsg.DescribeClusterResponse).ErrorCode != 0 }},

	kmsg.Produce.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.Partitions = "t", []kmsg.ProduceRequestTopicPartition{kmsg.NewProduceRequestTopicPartition()}
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.Fetch.Int16(): {req: func(env apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxBytes, r.MaxWaitMillis = -1, 1<<20, 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t", env.topicID
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.ListOffsets.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.Metadata.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("t")
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.MetadataResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.OffsetCommit.Int16(): {req: func(env apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.Generation = "g", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = "t", env.topicID
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset = 1
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.OffsetFetch.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "g"
		r.Groups = append(r.Groups, g)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.FindCoordinator.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKeys = []string{"g"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.JoinGroup.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = "g", 10000, 10000, "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		r.Protocols = append(r.Protocols, p)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.JoinGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.Heartbeat.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.Generation, r.MemberID = "g", 1, "m"
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.HeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.LeaveGroup.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Group, r.MemberID = "g", "m"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "m"
		r.Members = append(r.Members, m)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.LeaveGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.SyncGroup.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.Generation, r.MemberID = "g", 1, "m"
		r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.SyncGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.DescribeGroups.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Groups = []string{"g"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	// Kafka lists the groups one may DESCRIBE (all of them with DESCRIBE on the cluster).
	kmsg.ListGroups.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrListGroupsRequest()
	}, refused: func(r kmsg.Response) bool {
		resp := r.(*kmsg.ListGroupsResponse)
		return resp.ErrorCode == 0 && !slices.ContainsFunc(resp.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return g.Group == "g" })
	}},
	kmsg.CreateTopics.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis, r.ValidateOnly = 5000, true
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 1, 1
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.DeleteTopics.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis = 5000
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr("deletable")
		r.Topics, r.TopicNames = append(r.Topics, rt), []string{"deletable"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.DeleteRecords.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDeleteRecordsRequest()
		r.TimeoutMillis = 5000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "t"
		rt.Partitions = append(rt.Partitions, kmsg.NewDeleteRecordsRequestTopicPartition()) // before offset 0
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.InitProducerID.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrInitProducerIDRequest()
		r.TransactionalID, r.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.InitProducerIDResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}},
	kmsg.OffsetForLeaderEpoch.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		r.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "t"
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	// v4+ is the leaders' verification: CLUSTER_ACTION.
	kmsg.AddPartitionsToTxn.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.VerifyOnly = "tx", 1, true
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = "t", []int32{0}
		tx.Topics = append(tx.Topics, tt)
		r.Transactions = append(r.Transactions, tx)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AddPartitionsToTxnResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.AddOffsetsToTxn.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAddOffsetsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.Group = "tx", 1, "g"
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}},
	kmsg.EndTxn.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrEndTxnRequest()
		r.TransactionalID, r.ProducerID = "tx", 1
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.EndTxnResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}},
	kmsg.WriteTxnMarkers.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID = 1
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "t", []int32{0}
		m.Topics = append(m.Topics, mt)
		r.Markers = append(r.Markers, m)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.TxnOffsetCommit.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		r.TransactionalID, r.Group, r.ProducerID, r.Generation = "tx", "g", 1, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		p.Offset = 1
		rt.Partitions = append(rt.Partitions, p)
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}},
	kmsg.DescribeACLs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeACLsRequest()
		r.ResourceType, r.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		r.Operation, r.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeACLsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.CreateACLs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrCreateACLsRequest()
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "nobodys", kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:nobody", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		r.Creations = append(r.Creations, c)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.DeleteACLs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Principal, f.Operation, f.PermissionType = kmsg.StringPtr("User:nobody"), kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		r.Filters = append(r.Filters, f)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.DescribeConfigs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, rr)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.AlterConfigs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAlterConfigsRequest()
		r.ValidateOnly = true
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, rr)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.IncrementalAlterConfigs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r.ValidateOnly = true
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
		r.Resources = append(r.Resources, rr)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.DescribeLogDirs.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrDescribeLogDirsRequest()
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeLogDirsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.CreatePartitions.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.TimeoutMillis, r.ValidateOnly = 5000, true
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "t", 2
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.DeleteGroups.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{"not-there"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.ElectLeaders.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrElectLeadersRequest()
		r.TimeoutMillis = 5000
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ElectLeadersResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.AlterPartitionAssignments.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		r.TimeoutMillis = 5000
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = "t"
		rt.Partitions = []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0}} // a cancel: nothing in progress
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.ListPartitionReassignments.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrListPartitionReassignmentsRequest()
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ListPartitionReassignmentsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.OffsetDelete.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = "g"
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = "t"
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 7}} // not there: g keeps its offset
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.DescribeUserSCRAMCredentials.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.AlterUserSCRAMCredentials.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = "nobody", 1
		r.Deletions = append(r.Deletions, d)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.DescribeClientQuotas.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrDescribeClientQuotasRequest()
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeClientQuotasResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.AlterClientQuotas.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAlterClientQuotasRequest()
		r.ValidateOnly = true
		e := kmsg.NewAlterClientQuotasRequestEntry()
		ee := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ee.Type, ee.Name = "user", kmsg.StringPtr("nobody")
		e.Entity = append(e.Entity, ee)
		r.Entries = append(r.Entries, e)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.DescribeQuorum.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeQuorumResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.UpdateFeatures.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrUpdateFeaturesRequest()
		r.TimeoutMillis, r.ValidateOnly = 5000, true
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.UpdateFeaturesResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	kmsg.DescribeProducers.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0}
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.DescribeTransactions.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeTransactionsRequest()
		r.TransactionalIDs = []string{"tx"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	}},
	// Kafka lists the transactional ids one may DESCRIBE.
	kmsg.ListTransactions.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrListTransactionsRequest()
		r.DurationFilterMillis = -1
		return r
	}, refused: func(r kmsg.Response) bool {
		resp := r.(*kmsg.ListTransactionsResponse)
		return resp.ErrorCode == 0 && !slices.ContainsFunc(resp.TransactionStates, func(s kmsg.ListTransactionsResponseTransactionState) bool { return s.TransactionalID == "tx" })
	}},
	kmsg.ConsumerGroupHeartbeat.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.RebalanceTimeoutMillis = "g848", "member-of-g848", 30000
		r.SubscribedTopicNames, r.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.ConsumerGroupDescribe.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrConsumerGroupDescribeRequest()
		r.Groups = []string{"g"}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.ConsumerGroupDescribeResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
	}},
	kmsg.DescribeTopicPartitions.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrDescribeTopicPartitionsRequest()
		r.ResponsePartitionLimit = 2000
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = "t"
		r.Topics = append(r.Topics, rt)
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.DescribeTopicPartitionsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
	}},
	kmsg.AddRaftVoter.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrAddRaftVoterRequest()
		r.VoterID, r.VoterDirectoryID, r.TimeoutMillis = 99, [16]byte{9}, 1000
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.AddRaftVoterResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
	// A token for another owner needs CREATE_TOKENS on the owner's USER resource.
	kmsg.CreateDelegationToken.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrCreateDelegationTokenRequest()
		r.OwnerPrincipalType, r.OwnerPrincipalName, r.MaxLifetimeMillis = kmsg.StringPtr("User"), kmsg.StringPtr("carol"), -1
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.CreateDelegationTokenResponse).ErrorCode, kerr.DelegationTokenAuthorizationFailed)
	}},
	// Carol's token (made by the test) is described to principals that may describe it.
	kmsg.DescribeDelegationToken.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		return kmsg.NewPtrDescribeDelegationTokenRequest()
	}, refused: func(r kmsg.Response) bool {
		resp := r.(*kmsg.DescribeDelegationTokenResponse)
		return resp.ErrorCode != 0 || !slices.ContainsFunc(resp.TokenDetails, func(d kmsg.DescribeDelegationTokenResponseTokenDetail) bool { return d.PrincipalName == "carol" })
	}},
	// No ACL: an unknown HMAC is DELEGATION_TOKEN_NOT_FOUND to everyone.
	kmsg.RenewDelegationToken.Int16(): {open: true, req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrRenewDelegationTokenRequest()
		r.HMAC, r.RenewTimeMillis = []byte("unknown"), -1
		return r
	}, refused: func(r kmsg.Response) bool {
		return !code(r.(*kmsg.RenewDelegationTokenResponse).ErrorCode, kerr.DelegationTokenNotFound)
	}},
	kmsg.ExpireDelegationToken.Int16(): {open: true, req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrExpireDelegationTokenRequest()
		r.HMAC, r.ExpiryPeriodMillis = []byte("unknown"), -1
		return r
	}, refused: func(r kmsg.Response) bool {
		return !code(r.(*kmsg.ExpireDelegationTokenResponse).ErrorCode, kerr.DelegationTokenNotFound)
	}},
	kmsg.RemoveRaftVoter.Int16(): {req: func(apiAuthEnv) kmsg.Request {
		r := kmsg.NewPtrRemoveRaftVoterRequest()
		r.VoterID, r.VoterDirectoryID = 99, [16]byte{9}
		return r
	}, refused: func(r kmsg.Response) bool {
		return code(r.(*kmsg.RemoveRaftVoterResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
	}},
}

// rawSASLConn dials addr and, if user is not empty, authenticates with SASL PLAIN
// (SaslHandshake v1, SaslAuthenticate v2).
func rawSASLConn(t *testing.T, addr, user, pass string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if user == "" {
		return c
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if _, err := rawExchange(t, c, hs); err != nil {
		t.Fatalf("SaslHandshake: %v", err)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00"+user+"\x00"+pass)
	resp, err := rawExchange(t, c, au)
	if err != nil || resp.(*kmsg.SASLAuthenticateResponse).ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate as %s: %v %+v", user, err, resp)
	}
	return c
}

// rawExchange sends req (at its version) on c and decodes the answer; an error when the
// connection closes instead.
func rawExchange(t *testing.T, c net.Conn, req kmsg.Request) (kmsg.Response, error) {
	t.Helper()
	b, err := sendRaw(t, c, 7, req)
	if err != nil {
		return nil, err
	}
	body := b[8:] // size, correlation id
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // the response header's empty tagged fields
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding %s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// TestAPIAuthorizationEveryAPI: for every API a client listener serves (from the broker's
// registry), at its highest version: on a SASL listener, an unauthenticated client's request
// closes the connection (but ApiVersions' and the SASL exchange's); an authenticated
// principal without ACLs gets the API's authorization error (the top-level one, the
// resource's, or a closed connection where Kafka's answer has no error field) or, for the
// listing APIs, a list without the resources it may not describe; a super user gets neither.
func TestAPIAuthorizationEveryAPI(t *testing.T) {
	n, adm := startACLNodeWithGroup(t)
	createTopic(t, n.Node, "deletable", 1, nil)
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 60000
	if r, err := ip.RequestWith(ctxT(t), newClient(t, n.Node)); err != nil || r.ErrorCode != 0 {
		t.Fatalf("InitProducerId tx: %v %+v", err, r)
	}
	td, err := adm.ListTopics(ctxT(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	env := apiAuthEnv{topicID: td["t"].ID}
	addr := n.Server().ListenerAddr("SASL_PLAINTEXT")
	// A token of carol's, made by the super user, for DescribeDelegationToken.
	ct := kmsg.NewPtrCreateDelegationTokenRequest()
	ct.OwnerPrincipalType, ct.OwnerPrincipalName, ct.MaxLifetimeMillis = kmsg.StringPtr("User"), kmsg.StringPtr("carol"), -1
	if r, err := ct.RequestWith(ctxT(t), saslUser(t, n, "admin", "admin-secret")); err != nil || r.ErrorCode != 0 {
		t.Fatalf("CreateDelegationToken for carol: %v %+v", err, r)
	}

	for _, a := range broker.ServedAPIs(false) {
		name := kmsg.NameForKey(a.ApiKey)
		c, ok := apiAuthCases[a.ApiKey]
		if !ok {
			t.Errorf("%s (%d) is served and has no case in apiAuthCases", name, a.ApiKey)
			continue
		}
		if c.req == nil {
			continue // the handshake APIs themselves
		}
		t.Run(name, func(t *testing.T) {
			send := func(user, pass string) (kmsg.Response, error) {
				req := c.req(env)
				req.SetVersion(a.MaxVersion)
				return rawExchange(t, rawSASLConn(t, addr, user, pass), req)
			}
			if _, err := send("", ""); !closed(err) {
				t.Errorf("v%d before SASL authentication: %v; want the connection closed", a.MaxVersion, err)
			}
			resp, err := send("alice", "alice-secret")
			switch {
			case err != nil:
				t.Errorf("alice without ACLs: %v; want an answer", err)
			case c.open && c.refused(resp):
				t.Errorf("alice without ACLs: %+v; Kafka serves it to every authenticated principal", resp)
			case !c.open && !c.refused(resp):
				t.Errorf("alice without ACLs was not refused: %+v", resp)
			}
			resp, err = send("admin", "admin-secret")
			if err != nil || c.refused(resp) {
				t.Errorf("the super user was refused: %v %+v", err, resp)
			}
		})
	}
}

// closed reports whether err, a read after the request, means the broker closed the
// connection (sendRaw sets a read deadline: a timeout is a connection left open).
func closed(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
