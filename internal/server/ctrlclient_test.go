package server

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeControllerListener answers ApiVersions as a controller listener does (no Produce, no
// Metadata) and BrokerHeartbeat, records the key of every request, and closes the connection
// on any other request, as the listener does.
type fakeControllerListener struct {
	ln   net.Listener
	mu   sync.Mutex
	keys []int16
}

func (f *fakeControllerListener) serve(conn net.Conn) {
	defer conn.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, frame); err != nil || len(frame) < 8 {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
		corr := binary.BigEndian.Uint32(frame[4:])
		f.mu.Lock()
		f.keys = append(f.keys, key)
		f.mu.Unlock()
		var resp kmsg.Response
		switch key {
		case kmsg.ApiVersions.Int16():
			r := kmsg.NewPtrApiVersionsResponse()
			for _, k := range []int16{kmsg.ApiVersions.Int16(), kmsg.BrokerHeartbeat.Int16()} {
				ak := kmsg.NewApiVersionsResponseApiKey()
				ak.ApiKey, ak.MaxVersion = k, kmsg.RequestForKey(k).MaxVersion()
				r.ApiKeys = append(r.ApiKeys, ak)
			}
			resp = r
		case kmsg.BrokerHeartbeat.Int16():
			resp = kmsg.NewPtrBrokerHeartbeatResponse()
		default:
			return
		}
		resp.SetVersion(version)
		body := binary.BigEndian.AppendUint32(nil, corr)
		if resp.IsFlexible() && key != kmsg.ApiVersions.Int16() {
			body = append(body, 0) // the response header's empty tagged fields
		}
		body = resp.AppendTo(body)
		if _, err := conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
			return
		}
	}
}

func (f *fakeControllerListener) sawMetadata() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k == kmsg.Metadata.Int16() {
			return true
		}
	}
	return false
}

// TestControllerClientSendsNoMetadata: the node's client of the controller listener, asked
// to refresh its metadata (as franz-go does every 5 minutes on its own), sends no Metadata
// request, which the listener would answer by closing the connection its heartbeats share;
// its heartbeats still go out.
func TestControllerClientSendsNoMetadata(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeControllerListener{ln: ln}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	cl, err := kgo.NewClient(controllerClientOpts(ln.Addr().String(), nil, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		cl.ForceMetadataRefresh()
		resp, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrBrokerHeartbeatRequest())
		if err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		if _, ok := resp.(*kmsg.BrokerHeartbeatResponse); !ok {
			t.Fatalf("heartbeat %d: answered %T", i, resp)
		}
		time.Sleep(100 * time.Millisecond) // room for a metadata request to go out, if one would
	}
	if f.sawMetadata() {
		t.Fatal("the controller client sent a Metadata request to the controller listener")
	}
}
