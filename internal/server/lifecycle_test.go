package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/samsa-io/samsa/internal/metadata"
)

// TestRegistrationRetriesWhileDuplicate: a second incarnation of a broker registers while the
// first still heartbeats: the controller refuses it (DUPLICATE_BROKER_REGISTRATION) and the
// registration keeps retrying, without giving up, until the first's session expires and it
// is fenced; then the second is registered with a new epoch.
func TestRegistrationRetriesWhileDuplicate(t *testing.T) {
	srv, err := startNode(t, map[string]string{"log.dirs": t.TempDir(), "broker.session.timeout.ms": "1500", "broker.heartbeat.interval.ms": "300"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Broker 7's listener accepts connections, so no probe takes it for gone.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	incarnation := func() metadata.Broker {
		return metadata.Broker{ID: 7, IncarnationID: metadata.UUID(uuid.New()), Endpoints: []metadata.Endpoint{
			{Listener: "PLAINTEXT", Host: "127.0.0.1", Port: port, SecurityProtocol: "PLAINTEXT"}}}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first := newBrokerLifecycle(srv.client, srv.ctrl, logger, incarnation(), 300*time.Millisecond)
	if err := first.register(ctx, srv.Image().ClusterID); err != nil {
		t.Fatal(err)
	}
	go first.run()
	if err := first.waitUnfenced(ctx); err != nil {
		t.Fatal(err)
	}

	second := newBrokerLifecycle(srv.client, srv.ctrl, logger, incarnation(), 300*time.Millisecond)
	registered := make(chan error, 1)
	go func() { registered <- second.register(ctx, srv.Image().ClusterID) }()
	select {
	case err := <-registered:
		t.Fatalf("second incarnation registered while the first heartbeats: %v", err)
	case <-time.After(2 * time.Second): // more than the session timeout, heartbeats going on
	}
	if got := srv.Image().Brokers[7]; got.Epoch != first.Epoch() || got.Fenced {
		t.Fatalf("broker 7 is %+v, want the first incarnation (epoch %d), unfenced", got, first.Epoch())
	}

	first.close() // its heartbeats stop: fenced at session expiry, then the second gets in
	start := time.Now()
	if err := <-registered; err != nil {
		t.Fatalf("second registration: %v", err)
	}
	got := srv.Image().Brokers[7]
	if got.IncarnationID != second.reg.IncarnationID || second.Epoch() <= first.Epoch() {
		t.Errorf("broker 7 is %+v (epoch %d), want the second incarnation with an epoch above %d", got, second.Epoch(), first.Epoch())
	}
	t.Logf("second incarnation registered %v after the first stopped heartbeating", time.Since(start).Round(time.Millisecond))
}
