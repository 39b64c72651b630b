package broker_test

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// openFiles counts this process's file descriptors; the broker runs in it.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(fds)
}

// TestWaitingRequestsEndWhenTheClientLeaves: clients that send a request the broker holds (a
// fetch long poll of 5 minutes, a JoinGroup waiting for a member that does not rejoin) and then
// close their connection must not keep the broker's side of it open until the wait ends.
func TestWaitingRequestsEndWhenTheClientLeaves(t *testing.T) {
	n := testcluster.Start(t)
	createTopic(t, n, "quiet", 1, nil)

	// A classic group with one stable member, which will not rejoin: a second member's
	// JoinGroup waits for it for the rebalance timeout (5 minutes).
	first := kmsg.NewPtrJoinGroupRequest()
	first.Version = 5
	first.Group, first.ProtocolType = "waiting", "consumer"
	first.SessionTimeoutMillis, first.RebalanceTimeoutMillis = 300_000, 300_000
	first.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	c0, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	adm := newAdmin(t, n)
	waitUntil(t, 30*time.Second, "the group coordinator is loaded", func() bool {
		return adm.FindGroupCoordinators(ctxT(t), first.Group).Error() == nil
	})
	for corr := int32(1); ; corr++ { // KIP-394: MEMBER_ID_REQUIRED first, with the id to use
		c0.Write(rawRequest(first, corr))
		var joined kmsg.JoinGroupResponse
		joined.Version = 5
		if err := joined.ReadFrom(readResponse(t, c0)[4:]); err != nil {
			t.Fatal(err)
		}
		if joined.ErrorCode == 0 {
			break
		}
		if corr > 1 || joined.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("first join: error code %d", joined.ErrorCode)
		}
		first.MemberID = joined.MemberID
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 300_000, 1<<20, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "quiet"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	second := *first
	second.MemberID = "" // a new member
	second.Protocols = first.Protocols

	before := openFiles(t)
	const clients = 40
	var conns []net.Conn
	for i := range clients {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			c.Write(rawRequest(fetch, 1))
			continue
		}
		// KIP-394: the first join gets MEMBER_ID_REQUIRED and an id; the second waits.
		c.Write(rawRequest(&second, 1))
		var resp kmsg.JoinGroupResponse
		resp.Version = 5
		if err := resp.ReadFrom(readResponse(t, c)[4:]); err != nil {
			t.Fatal(err)
		}
		again := second
		again.MemberID = resp.MemberID
		c.Write(rawRequest(&again, 2))
	}
	// Every connection counts twice in this process: the client's side and the broker's.
	waitUntil(t, 10*time.Second, "the waiting connections are open", func() bool {
		return openFiles(t) >= before+2*clients-4
	})
	for _, c := range conns {
		c.Close()
	}
	waitUntil(t, 60*time.Second, "the broker closed its side of the departed clients", func() bool {
		return openFiles(t) <= before+4
	})
}
