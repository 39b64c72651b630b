package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/config"
	"github.com/samsa-io/samsa/internal/server"
)

// node is a fresh in-process Samsa node on loopback with its data in a temporary directory.
type node struct {
	srv *server.Server
	dir string
}

func startNode(ctx context.Context, settings map[string]string, logToStderr bool) (*node, error) {
	dir, err := os.MkdirTemp("", "samsa-rebalance-")
	if err != nil {
		return nil, err
	}
	props := map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"log.dirs":  dir,
	}
	for k, v := range settings {
		props[k] = v
	}
	cfg, err := config.LoadServer(props)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if logToStderr {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := server.Start(sctx, cfg, slog.New(h))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &node{srv: srv, dir: dir}, nil
}

func (n *node) addr() string { return n.srv.Addr() }

// close stops the node (bounded) and removes its data.
func (n *node) close() {
	done := make(chan struct{})
	go func() {
		n.srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "rebalance: the node did not stop within 30s")
	}
	os.RemoveAll(n.dir)
}

// createTopic creates the topic and waits until every partition has a leader.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(cctx, int32(partitions), -1, nil, topic)
	if err != nil {
		return err
	}
	if resp.Err != nil {
		return resp.Err
	}
	return waitFor(cctx, 60*time.Second, func() bool {
		td, err := adm.ListTopics(cctx, topic)
		if err != nil {
			return false
		}
		t, ok := td[topic]
		if !ok || t.Err != nil || len(t.Partitions) != partitions {
			return false
		}
		for _, p := range t.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return false
			}
		}
		return true
	})
}

// trickle keeps writing one small record to every partition every interval.
type trickle struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	produced atomic.Int64
	failed   atomic.Int64
	dropped  atomic.Int64 // the client's buffer was full
	lastErr  atomic.Value
}

func startTrickle(brokers []string, topic string, partitions int, every time.Duration) (*trickle, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("rebalance-bench-producer"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &trickle{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		var seq uint64
		for {
			for p := 0; p < partitions; p++ {
				seq++
				r := &kgo.Record{Partition: int32(p), Value: strconv.AppendUint(nil, seq, 10)}
				cl.TryProduce(ctx, r, func(_ *kgo.Record, err error) {
					switch {
					case err == nil:
						t.produced.Add(1)
					case err == kgo.ErrMaxBuffered:
						t.dropped.Add(1)
					case ctx.Err() == nil:
						t.failed.Add(1)
						t.lastErr.Store(err.Error())
					}
				})
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return t, nil
}

func (t *trickle) stop() {
	t.cancel()
	<-t.done
	done := make(chan struct{})
	go func() {
		t.cl.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// kip848Heartbeat asks the broker for its KIP-848 heartbeat interval: a throwaway member
// joins a throwaway group with one ConsumerGroupHeartbeat and leaves at once.
func kip848Heartbeat(ctx context.Context, cl *kgo.Client, topic string) (time.Duration, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	group := "rebalance-probe-" + hex.EncodeToString(id[:4])
	member := hex.EncodeToString(id[:])
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group = group
	req.MemberID = member
	req.MemberEpoch = 0
	req.RebalanceTimeoutMillis = 60000
	req.SubscribedTopicNames = []string{topic}
	assignor := "range"
	req.ServerAssignor = &assignor
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	// A broker that has not created its offsets topic yet answers COORDINATOR_NOT_AVAILABLE
	// and the like: retry those.
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	for {
		r, err := req.RequestWith(cctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(r.ErrorCode)
		}
		if err == nil {
			resp = r
			break
		}
		if !kerr.IsRetriable(err) || !sleepCtx(cctx, 250*time.Millisecond) {
			return 0, err
		}
	}
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Group = group
	leave.MemberID = member
	if resp.MemberID != nil {
		leave.MemberID = *resp.MemberID
	}
	leave.MemberEpoch = -1
	_, _ = leave.RequestWith(cctx, cl)
	return time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond, nil
}
