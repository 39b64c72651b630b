package wire

import (
	"context"
	"encoding/binary"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequesterPrincipalTag is Samsa's tagged field of a delegation token request
// (CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken; flexible versions)
// that a broker forwards to the active controller: the principal of the client that asked
// (User:alice), which the controller needs for the token's requester and the owner and
// renewer checks (Kafka carries it in an EnvelopeRequest). Honored only on the controller
// listener, which serves the nodes alone.
const RequesterPrincipalTag = 10002

// SetRequesterPrincipal adds RequesterPrincipalTag to a request.
func SetRequesterPrincipal(req kmsg.Request, principal string) {
	if tags := messageTags(req); tags != nil {
		tags.Set(RequesterPrincipalTag, []byte(principal))
	}
}

// RequesterPrincipal reads RequesterPrincipalTag from a request; ok is false without it.
func RequesterPrincipal(req kmsg.Request) (principal string, ok bool) {
	v, ok := tagValue(req, RequesterPrincipalTag)
	return string(v), ok
}

// ForwardedClientTag is Samsa's tagged field of a topic mutation (CreateTopics v5+,
// DeleteTopics v4+, CreatePartitions v2+) that a broker forwards to the active controller for
// a client: the client's principal and client id, and whether the client's request version
// gets the strict controller mutation quota (KIP-599). The controller charges that client's
// controller_mutation_rate with them, as Kafka's controller does with the principal of the
// EnvelopeRequest and the client id of the request inside. Honored only on the controller
// listener, which serves the nodes alone.
const ForwardedClientTag = 10003

// ForwardedClient is who a forwarded topic mutation is for (ForwardedClientTag). Throttle is
// set by the forwarder from the controller's answer: the throttle the client earned.
type ForwardedClient struct {
	Principal, ClientID string
	Strict              bool
	Throttle            time.Duration
}

// maxForwardedClientField bounds the principal and the client id carried (uint16 lengths).
const maxForwardedClientField = math.MaxUint16

// SetForwardedClient adds ForwardedClientTag to a request: version byte 0, strict byte, then
// the principal and the client id, each a big-endian uint16 length and its bytes (cut to
// 65,535 bytes).
func SetForwardedClient(req kmsg.Request, fc ForwardedClient) {
	tags := messageTags(req)
	if tags == nil {
		return
	}
	b := []byte{0, 0}
	if fc.Strict {
		b[1] = 1
	}
	for _, s := range []string{fc.Principal, fc.ClientID} {
		s = s[:min(len(s), maxForwardedClientField)]
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	tags.Set(ForwardedClientTag, b)
}

// ForwardedClientOf reads ForwardedClientTag from a request; ok is false without it or when it
// does not decode.
func ForwardedClientOf(req kmsg.Request) (fc ForwardedClient, ok bool) {
	raw, ok := tagValue(req, ForwardedClientTag)
	if !ok || len(raw) < 2 || raw[0] != 0 {
		return fc, false
	}
	fc.Strict = raw[1] == 1
	rest := raw[2:]
	var fields [2]string
	for i := range fields {
		if len(rest) < 2 {
			return ForwardedClient{}, false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return ForwardedClient{}, false
		}
		fields[i], rest = string(rest[2:2+n]), rest[2+n:]
	}
	fc.Principal, fc.ClientID = fields[0], fields[1]
	return fc, true
}

type forwardedClientKey struct{}

// WithForwardedClient returns ctx carrying fc: a topic mutation made with ctx and forwarded
// to the active controller carries fc in ForwardedClientTag, and the forwarder sets
// fc.Throttle from the answer.
func WithForwardedClient(ctx context.Context, fc *ForwardedClient) context.Context {
	return context.WithValue(ctx, forwardedClientKey{}, fc)
}

// ForwardedClientFrom returns the ForwardedClient ctx carries, or nil.
func ForwardedClientFrom(ctx context.Context) *ForwardedClient {
	fc, _ := ctx.Value(forwardedClientKey{}).(*ForwardedClient)
	return fc
}
