package group

import "time"

// Protocol is one assignment protocol a member supports, with its metadata (for the
// "consumer" protocol type, the subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group      string
	MemberID   string
	InstanceID *string // group.instance.id of a static member (KIP-345)
	ClientID   string
	ClientHost string
	// SessionTimeout and RebalanceTimeout are the member's; JoinGroup v0 has no rebalance
	// timeout and uses the session timeout.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	ProtocolType     string
	Protocols        []Protocol
	// RequireKnownMemberID is set from JoinGroup v4 (KIP-394): a dynamic member joining
	// without an id gets MEMBER_ID_REQUIRED and an id to rejoin with.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set from JoinGroup v9 (KIP-814).
	SupportsSkipAssignment bool
	Reason                 string
}

// JoinMember is one member as the leader sees it in the JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult is the JoinGroup response. Err is nil or a *kerr.Error.
type JoinResult struct {
	Err            error
	MemberID       string
	Generation     int32
	ProtocolType   *string
	Protocol       *string
	LeaderID       string
	SkipAssignment bool
	Members        []JoinMember // only for the leader
}

// SyncRequest is a SyncGroup request; Assignments is set by the leader only.
type SyncRequest struct {
	Group        string
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string // v5+
	Protocol     *string // v5+
	Assignments  map[string][]byte
}

// SyncResult is the SyncGroup response.
type SyncResult struct {
	Err          error
	ProtocolType *string
	Protocol     *string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat request.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
}

// LeaveMember is one member leaving (LeaveGroup v3+ batches them; earlier versions send one).
// A member may be named by its instance id alone (MemberID "") to remove a static member.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
	Reason     string
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommitOffset is one offset to commit.
type CommitOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32 // -1: none
	Metadata    *string
	// CommitTimestamp is OffsetCommit v1's per-partition timestamp; -1 means now.
	CommitTimestamp int64
}

// CommitRequest is an OffsetCommit request. Generation -1 with no member id is a "simple"
// commit from a client that does not use group management (or an admin client).
type CommitRequest struct {
	Group      string
	MemberID   string
	InstanceID *string
	Generation int32
	// RetentionTime is OffsetCommit v2-v4's retention_time_ms; -1 is the broker default.
	RetentionTime time.Duration
	// APIVersion is the request version: from v9 an unknown group is GROUP_ID_NOT_FOUND.
	APIVersion int16
	Offsets    []CommitOffset
}

// FetchedOffset is one committed offset (Offset -1 when there is none).
type FetchedOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	Err         error
}

// GroupListing is one group of ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
	Type         string
}

// MemberDescription is one member of DescribeGroups.
type MemberDescription struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte // the selected protocol's metadata, when the group is Stable
	Assignment []byte // when the group is Stable
}

// GroupDescription is DescribeGroups' view of a group.
type GroupDescription struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Members      []MemberDescription
	Err          error
}
