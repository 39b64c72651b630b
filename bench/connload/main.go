// Command connload opens many connections to a broker to measure what they cost it (see
// measure.sh): "slowloris" connections each send a size prefix claiming a huge request and
// then trickle one byte per interval; "idle" connections each do one ApiVersions or Metadata
// request and then stay open, idle. Every connection closes after -hold, so a run always ends.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9092", "broker address (loopback)")
	mode := flag.String("mode", "slowloris", "slowloris or idle")
	conns := flag.Int("conns", 1000, "connections to open")
	claim := flag.Int("claim", 100_000_000, "slowloris: the request size each prefix claims")
	interval := flag.Duration("interval", time.Second, "slowloris: time between trickled bytes")
	hold := flag.Duration("hold", 30*time.Second, "how long each connection stays open")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("-addr %q: loopback addresses only", *addr)
	}

	var wg sync.WaitGroup
	var opened, closedEarly atomic.Int64
	ready := make(chan struct{}, *conns)
	for i := range *conns {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		opened.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			var early bool
			switch *mode {
			case "slowloris":
				early = slowloris(c, *claim, *interval, *hold, ready)
			case "idle":
				early = idle(c, int32(i), *hold, ready)
			default:
				log.Fatalf("unknown -mode %q", *mode)
			}
			if early {
				closedEarly.Add(1)
			}
		}()
	}
	for range *conns {
		<-ready
	}
	fmt.Printf("ready: %d %s connections\n", opened.Load(), *mode)
	wg.Wait()
	fmt.Printf("done: %d closed by the broker before -hold\n", closedEarly.Load())
}

// slowloris claims a huge request and trickles it; it reports whether the broker closed the
// connection first.
func slowloris(c net.Conn, claim int, interval, hold time.Duration, ready chan<- struct{}) bool {
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(claim))); err != nil {
		ready <- struct{}{}
		return true
	}
	ready <- struct{}{}
	end := time.Now().Add(hold)
	for time.Now().Before(end) {
		if _, err := c.Write([]byte{1}); err != nil {
			return true
		}
		time.Sleep(interval)
	}
	return false
}

// idle does one request (ApiVersions or Metadata, alternately), then waits; it reports
// whether the broker closed the connection first.
func idle(c net.Conn, i int32, hold time.Duration, ready chan<- struct{}) bool {
	var req kmsg.Request = kmsg.NewPtrApiVersionsRequest()
	if i%2 == 1 {
		m := kmsg.NewPtrMetadataRequest()
		m.Version = 1
		req = m
	}
	defer func() { ready <- struct{}{} }() // ready once answered (or failed)
	if _, err := c.Write(frame(req, i)); err != nil {
		return true
	}
	var prefix [4]byte
	if _, err := io.ReadFull(c, prefix[:]); err != nil {
		return true
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(prefix[:]))); err != nil {
		return true
	}
	c.SetReadDeadline(time.Now().Add(hold))
	_, err := c.Read(prefix[:1])
	var ne net.Error
	return !(err != nil && errorsAs(err, &ne) && ne.Timeout())
}

func errorsAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	*ne = e
	return ok
}

// frame encodes a request with a v1 header (ApiVersions v0 and Metadata v1 are not flexible).
func frame(req kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 8)
	b = append(b, "connload"...)
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
