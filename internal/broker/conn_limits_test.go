package broker_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/quota"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// servedConn dials n and checks the broker answers an ApiVersions on the connection.
func servedConn(t *testing.T, n *testcluster.Node) net.Conn {
	t.Helper()
	c := dialNode(t, n)
	if _, err := c.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1)); err != nil {
		t.Fatal(err)
	}
	readResponse(t, c)
	return c
}

func dialNode(t *testing.T, n *testcluster.Node) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMaxConnectionsPerIP: connections from one ip beyond max.connections.per.ip (or its
// override for the ip) are closed at once; once one closes, a new one is served.
func TestMaxConnectionsPerIP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings []string
		allowed  int
	}{
		{"max.connections.per.ip", []string{"max.connections.per.ip=2"}, 2},
		{"override", []string{"max.connections.per.ip=100", "max.connections.per.ip.overrides=10.9.9.9:50,127.0.0.1:1"}, 1},
		{"override by host name", []string{"max.connections.per.ip=0", "max.connections.per.ip.overrides=localhost:3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testcluster.Start(t, tc.settings...)
			var conns []net.Conn
			for i := 0; i < tc.allowed; i++ {
				conns = append(conns, servedConn(t, n))
			}
			extra := dialNode(t, n)
			extra.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1))
			expectClosed(t, extra)
			conns[0].Close()
			testcluster.PollUntil(t, 10*time.Second, "a connection served after one closed", func() (bool, string) {
				c, err := net.Dial("tcp", n.Addr())
				if err != nil {
					return false, err.Error()
				}
				defer c.Close()
				c.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = readFrame(c)
				return err == nil, "closed"
			})
		})
	}
}

// TestMaxConnectionsHoldsExtra: beyond max.connections (or the listener's own
// max.connections) a new connection waits to be accepted, and is served once another closes.
func TestMaxConnectionsHoldsExtra(t *testing.T) {
	for _, setting := range []string{"max.connections=2", "listener.name.plaintext.max.connections=2"} {
		t.Run(setting, func(t *testing.T) {
			n := testcluster.Start(t, setting)
			first := servedConn(t, n)
			servedConn(t, n)
			held := dialNode(t, n) // the kernel completes the handshake; the broker does not accept it
			if _, err := held.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1)); err != nil {
				t.Fatal(err)
			}
			held.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := readFrame(held); err == nil {
				t.Fatal("a third connection was served while max connections were open")
			} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("the held connection failed instead of waiting: %v", err)
			}
			first.Close()
			held.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := readFrame(held); err != nil {
				t.Fatalf("the held connection was not served after another closed: %v", err)
			}
		})
	}
}

// TestConnectionCreationRate: max.connection.creation.rate delays accepts (a lower bound: 30
// connections at 10 per second, measured over 2 samples of 1 s, take more than a second).
func TestConnectionCreationRate(t *testing.T) {
	for _, setting := range []string{"max.connection.creation.rate=10", "listener.name.plaintext.max.connection.creation.rate=10"} {
		t.Run(setting, func(t *testing.T) {
			n := testcluster.Start(t, setting, "quota.window.num=2")
			start := time.Now()
			for i := 0; i < 30; i++ {
				servedConn(t, n).Close()
			}
			took := time.Since(start)
			t.Logf("30 connections in %v", took)
			if took < time.Second {
				t.Fatalf("30 connections at 10/s accepted in %v", took)
			}
		})
	}
}

// TestIPConnectionCreationRateQuota: an ip over its connection_creation_rate quota has its
// new connections closed: the default ip entity's quota, and the quota of an ip entity that
// names a host (localhost, set with AlterClientQuotas over TCP), applied to the address it
// resolves to once the broker resolved it in the background (polled); an ip entity of another
// address does not limit these connections.
func TestIPConnectionCreationRateQuota(t *testing.T) {
	for _, tc := range []struct {
		name   string
		entity quota.Name
		closes bool
	}{
		{"default ip", quota.DefaultName(), true},
		{"host name", quota.Named("localhost"), true},
		{"another address", quota.Named("127.0.0.2"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := &quota.Table{Quotas: map[quota.Entity]quota.Values{{IP: tc.entity}: {quota.ConnectionCreationRate: 5}}}
			n := startWithQuotas(t, tab)
			closed, dialed := 0, 0
			for deadline := time.Now().Add(20 * time.Second); closed == 0 && (dialed < 30 || tc.closes && time.Now().Before(deadline)); dialed++ {
				c := dialNode(t, n)
				c.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := readFrame(c); err != nil {
					closed++
				}
				c.Close()
			}
			if tc.closes && closed == 0 {
				t.Fatalf("%d connections against a connection_creation_rate of 5/s: none closed", dialed)
			}
			if !tc.closes && closed > 0 {
				t.Fatalf("a connection closed by the quota of another address")
			}
		})
	}
}

// TestConnectionLimitsAtRunTime: max.connections.per.ip set cluster-wide with AlterConfigs
// applies to new connections at once; a malformed max.connections.per.ip.overrides is
// INVALID_CONFIG.
func TestConnectionLimitsAtRunTime(t *testing.T) {
	n := testcluster.Start(t)
	adm := newAdmin(t, n)
	alter := func(name, value string) error {
		resps, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}})
		if err != nil {
			return err
		}
		return resps[0].Err
	}
	if err := alter("max.connections.per.ip.overrides", "127.0.0.1"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("malformed overrides: %v, want INVALID_CONFIG", err)
	}
	if err := alter("max.connections.per.ip", "3"); err != nil {
		t.Fatal(err)
	}
	// The admin client holds one or two connections; of five more, some must be refused.
	testcluster.PollUntil(t, 10*time.Second, "a connection refused over max.connections.per.ip=3", func() (bool, string) {
		for i := 0; i < 5; i++ {
			c := dialNode(t, n)
			c.Write(rawRequest(kmsg.NewPtrApiVersionsRequest(), 1))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := readFrame(c); err != nil {
				return true, ""
			}
		}
		return false, "five more connections served"
	})
}
