package broker_test

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/broker"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// paddedApiVersions is an ApiVersions v0 request frame of size bytes (after the prefix): the
// body is padding, which the decoder ignores, so the broker answers it like any ApiVersions.
func paddedApiVersions(size int, corr int32) []byte {
	f := rawRequest(kmsg.NewPtrApiVersionsRequest(), corr)
	f = append(f, make([]byte, size-(len(f)-4))...)
	binary.BigEndian.PutUint32(f, uint32(size))
	return f
}

// watchClosed returns a channel closed once the broker closes c (a read fails).
func watchClosed(c net.Conn) <-chan struct{} {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	return closed
}

func expectAnswered(t *testing.T, c net.Conn, corr int32) {
	t.Helper()
	body := readResponse(t, c)
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
}

// TestSlowlorisConnections: connections that claim huge frames and trickle one byte at a time
// cost the broker only the bytes they sent (not the sizes they claim), are closed by
// samsa.request.read.timeout.ms however they trickle, and a real client keeps working
// meanwhile.
func TestSlowlorisConnections(t *testing.T) {
	n := testcluster.Start(t, "samsa.request.read.timeout.ms=2000")
	createTopic(t, n, "calm", 1, nil)
	const conns = 200
	heldBefore := broker.RequestBytesHeld()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc

	var closed []<-chan struct{}
	for range conns {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(binary.BigEndian.AppendUint32(nil, 100_000_000)) // within socket.request.max.bytes
		closed = append(closed, watchClosed(c))
		go func() { // one byte every 100 ms, for at most 30 s: longer than the deadline
			for range 300 {
				if _, err := c.Write([]byte{1}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	// Every connection has started its frame: each holds a buffer for its first bytes.
	waitUntil(t, 20*time.Second, "every trickling frame has a buffer", func() bool {
		return broker.RequestBytesHeld()-heldBefore >= conns*512
	})
	if held := broker.RequestBytesHeld() - heldBefore; held > conns*1024 {
		t.Fatalf("%d trickling connections hold %d bytes of frame buffers", conns, held)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapAlloc) - int64(heapBefore); grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB for %d trickling connections", grown>>20, conns)
	}

	// A real client is served meanwhile.
	cl := newClient(t, n, kgo.DefaultProduceTopic("calm"))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("0|still here")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, n, "calm", 1); string(got[0].Value) != "0|still here" {
		t.Fatalf("got %q", got[0].Value)
	}

	// The trickle does not extend the frame's deadline: the broker closes every one.
	for i, ch := range closed {
		select {
		case <-ch:
		case <-time.After(25 * time.Second):
			t.Fatalf("trickling connection %d still open", i)
		}
	}
	// (The consumer still open has a fetch in its long poll: a few KiB at most.)
	waitUntil(t, 10*time.Second, "the closed connections' buffers are released", func() bool {
		return broker.RequestBytesHeld()-heldBefore <= 4<<10
	})
}

// TestRequestBudgetBlocksReaders: with queued.max.request.bytes reached, readers stop reading
// rather than grow their frames (at most one frame goes past the bound, when every holder
// waits), and every frame completes once its bytes arrive: no deadlock.
func TestRequestBudgetBlocksReaders(t *testing.T) {
	const limit = 1 << 20
	n := testcluster.Start(t, "socket.request.max.bytes=1048576", "queued.max.request.bytes=1048576")
	const conns, size, sentFirst = 4, 900_000, 700_000
	heldBefore, waitingBefore := broker.RequestBytesHeld(), broker.RequestReadersWaiting()
	var cs []net.Conn
	var frames [][]byte
	for i := range conns {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f := paddedApiVersions(size, int32(i))
		if _, err := c.Write(f[:sentFirst]); err != nil {
			t.Fatal(err)
		}
		cs, frames = append(cs, c), append(frames, f)
	}
	// One frame reads what it can; the others' readers wait for the budget.
	waitUntil(t, 20*time.Second, "readers wait for the budget", func() bool {
		return broker.RequestReadersWaiting()-waitingBefore == conns-1
	})
	if held := broker.RequestBytesHeld() - heldBefore; held > 2*limit {
		t.Fatalf("%d bytes held, bound %d", held, limit)
	}
	for i, c := range cs {
		if _, err := c.Write(frames[i][sentFirst:]); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cs {
		expectAnswered(t, c, int32(i))
	}
	waitUntil(t, 10*time.Second, "the budget is given back", func() bool {
		return broker.RequestBytesHeld() <= heldBefore && broker.RequestReadersWaiting() == waitingBefore
	})
}

// TestSlowLargeFrameSucceeds: a large frame sent slowly, but within the deadline, is answered,
// although it is larger than the budget left by a stalled frame: it waits for the budget until
// the stalled frame's deadline closes that connection, then completes.
func TestSlowLargeFrameSucceeds(t *testing.T) {
	n := testcluster.Start(t, "socket.request.max.bytes=6291456", "queued.max.request.bytes=6291456",
		"samsa.request.read.timeout.ms=3000")
	stalled, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write(binary.BigEndian.AppendUint32(nil, 6<<20))
	stalled.Write(make([]byte, 1<<20))
	stalledClosed := watchClosed(stalled)

	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := paddedApiVersions(5_500_000, 42)
	for off := 0; off < len(frame); off += 256 << 10 {
		if _, err := c.Write(frame[off:min(off+256<<10, len(frame))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // a slow client
	}
	expectAnswered(t, c, 42)
	select {
	case <-stalledClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled frame's connection is still open")
	}
}
