package wire

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestForwardedClientTag: the client a broker forwards a topic mutation for survives the
// request's encoding at a flexible version; a request without the tag, or with a value that
// does not decode, has none.
func TestForwardedClientTag(t *testing.T) {
	long := strings.Repeat("x", 70_000)
	tests := []struct {
		name string
		fc   ForwardedClient
		want ForwardedClient
	}{
		{"strict", ForwardedClient{Principal: "User:alice", ClientID: "app", Strict: true}, ForwardedClient{Principal: "User:alice", ClientID: "app", Strict: true}},
		{"permissive, empty client id", ForwardedClient{Principal: "User:ANONYMOUS"}, ForwardedClient{Principal: "User:ANONYMOUS"}},
		{"cut to 65,535 bytes", ForwardedClient{Principal: "User:" + long, ClientID: long}, ForwardedClient{Principal: ("User:" + long)[:65535], ClientID: long[:65535]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Version = 7
			SetForwardedClient(req, tt.fc)
			back := kmsg.NewPtrCreateTopicsRequest()
			back.Version = 7
			if err := back.ReadFrom(req.AppendTo(nil)); err != nil {
				t.Fatal(err)
			}
			got, ok := ForwardedClientOf(back)
			if !ok || got != tt.want {
				t.Fatalf("got %+v %v, want %+v", got, ok, tt.want)
			}
		})
	}
	if _, ok := ForwardedClientOf(kmsg.NewPtrDeleteTopicsRequest()); ok {
		t.Fatal("a request without the tag has a forwarded client")
	}
	for _, bad := range [][]byte{nil, {0}, {1, 0, 0, 0, 0, 0}, {0, 1, 0, 5, 'a'}, {0, 1, 0, 1, 'a', 0}} {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.UnknownTags.Set(ForwardedClientTag, bad)
		if fc, ok := ForwardedClientOf(req); ok {
			t.Fatalf("value %v decodes as %+v", bad, fc)
		}
	}
}

// FuzzForwardedClientOf: any tag value decodes or is refused, without a panic.
func FuzzForwardedClientOf(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 'a', 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.UnknownTags.Set(ForwardedClientTag, v)
		if fc, ok := ForwardedClientOf(req); ok {
			req2 := kmsg.NewPtrDeleteTopicsRequest()
			SetForwardedClient(req2, fc)
			if back, _ := ForwardedClientOf(req2); back != fc {
				t.Fatalf("%+v does not round-trip: %+v", fc, back)
			}
		}
	})
}
