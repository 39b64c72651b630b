package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/group"
)

// The classic group membership APIs. JoinGroup and SyncGroup block the connection until the
// rebalance completes, as in Kafka.
func init() {
	register(kmsg.JoinGroup.Int16(), 0, 9, handleJoinGroup)
	register(kmsg.SyncGroup.Int16(), 0, 5, handleSyncGroup)
	register(kmsg.Heartbeat.Int16(), 0, 4, handleHeartbeat)
	register(kmsg.LeaveGroup.Int16(), 0, 5, handleLeaveGroup)
}

func handleJoinGroup(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	jr := group.JoinRequest{
		Group:                  r.Group,
		MemberID:               r.MemberID,
		InstanceID:             r.InstanceID,
		ClientID:               clientID(req),
		ClientHost:             clientHost(req),
		SessionTimeout:         msDuration(r.SessionTimeoutMillis),
		RebalanceTimeout:       msDuration(r.RebalanceTimeoutMillis),
		ProtocolType:           r.ProtocolType,
		RequireKnownMemberID:   r.Version >= 4 && r.InstanceID == nil,
		SupportsSkipAssignment: r.Version >= 9,
	}
	if r.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout // v0 has no rebalance timeout
	}
	if r.Reason != nil {
		jr.Reason = *r.Reason
	}
	for _, p := range r.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	waitStart := time.Now()
	res := b.groups.JoinGroup(req.conn.waitCtx, jr)
	req.waitedSince(waitStart)
	resp.ErrorCode = errCode(res.Err)
	resp.Generation = res.Generation
	resp.ProtocolType = res.ProtocolType
	resp.Protocol = res.Protocol
	resp.LeaderID = res.LeaderID
	resp.SkipAssignment = res.SkipAssignment
	resp.MemberID = res.MemberID
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

func handleSyncGroup(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	if r.Version >= 5 && (r.ProtocolType == nil || r.Protocol == nil) {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp, nil
	}
	sr := group.SyncRequest{
		Group:        r.Group,
		MemberID:     r.MemberID,
		InstanceID:   r.InstanceID,
		Generation:   r.Generation,
		ProtocolType: r.ProtocolType,
		Protocol:     r.Protocol,
	}
	if len(r.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	waitStart := time.Now()
	res := b.groups.SyncGroup(req.conn.waitCtx, sr)
	req.waitedSince(waitStart)
	resp.ErrorCode = errCode(res.Err)
	resp.ProtocolType = res.ProtocolType
	resp.Protocol = res.Protocol
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp, nil
}

func handleHeartbeat(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = errCode(b.groups.Heartbeat(group.HeartbeatRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, Generation: r.Generation,
	}))
	return resp, nil
}

func handleLeaveGroup(b *Broker, req *request) (kmsg.Response, error) {
	r := req.kreq.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	var members []group.LeaveMember
	if r.Version < 3 {
		members = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			lm := group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID}
			if m.Reason != nil {
				lm.Reason = *m.Reason
			}
			members = append(members, lm)
		}
	}
	gerr, errs := b.groups.LeaveGroup(r.Group, members)
	resp.ErrorCode = errCode(gerr)
	if gerr != nil {
		return resp, nil
	}
	if r.Version < 3 {
		resp.ErrorCode = errCode(errs[0])
		return resp, nil
	}
	for i, m := range r.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, m.InstanceID, errCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
