package wire

import (
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
	tags := messageTags(req)
	if tags == nil {
		return "", false
	}
	tags.Each(func(tag uint32, v []byte) {
		if tag == RequesterPrincipalTag {
			principal, ok = string(v), true
		}
	})
	return principal, ok
}
