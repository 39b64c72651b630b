package metadata

import (
	"fmt"
	"maps"
	"slices"
)

// Record types of delegation tokens (KIP-48).
const (
	TypeDelegationToken       = "DelegationToken"
	TypeRemoveDelegationToken = "RemoveDelegationToken"
)

// DelegationToken creates or updates one delegation token (Kafka's DelegationTokenRecord):
// its owner, the principal that requested it (KIP-373), its renewers, and its timestamps in
// milliseconds since the epoch. Neither the HMAC nor the secret key is stored: every node
// derives the HMAC from the token id with its delegation.token.secret.key.
type DelegationToken struct {
	TokenID             string   `json:"tokenID"`
	Owner               string   `json:"owner"`
	Requester           string   `json:"requester"`
	Renewers            []string `json:"renewers,omitempty"`
	IssueTimestamp      int64    `json:"issueTimestamp"`
	MaxTimestamp        int64    `json:"maxTimestamp"`
	ExpirationTimestamp int64    `json:"expirationTimestamp"`
}

// RemoveDelegationToken deletes one delegation token (Kafka's RemoveDelegationTokenRecord).
type RemoveDelegationToken struct {
	TokenID string `json:"tokenID"`
}

// RecordType implements Record.
func (DelegationToken) RecordType() string { return TypeDelegationToken }

// RecordType implements Record.
func (RemoveDelegationToken) RecordType() string { return TypeRemoveDelegationToken }

// Expired reports whether the token has expired at now (milliseconds): past its expiry or its
// max timestamp.
func (t DelegationToken) Expired(nowMs int64) bool {
	return t.ExpirationTimestamp < nowMs || t.MaxTimestamp < nowMs
}

// OwnerOrRenewer reports whether principal is the token's owner, its requester or one of its
// renewers (Kafka's TokenInformation.ownerOrRenewer).
func (t DelegationToken) OwnerOrRenewer(principal string) bool {
	return t.Owner == principal || t.Requester == principal || slices.Contains(t.Renewers, principal)
}

// MayRenew reports whether principal may renew or expire the token: its owner or one of its
// renewers (Kafka's DelegationTokenControlManager.allowedToRenew; not its requester).
func (t DelegationToken) MayRenew(principal string) bool {
	return t.Owner == principal || slices.Contains(t.Renewers, principal)
}

// DelegationTokenIDs returns the ids of the delegation tokens, sorted.
func (img *Image) DelegationTokenIDs() []string {
	return slices.Sorted(maps.Keys(img.DelegationTokens))
}

func (img *Image) applyDelegationToken(r DelegationToken) (*Image, error) {
	if r.TokenID == "" || r.Owner == "" {
		return img, fmt.Errorf("%w: delegation token without id or owner", ErrInvalidRecord)
	}
	r.Renewers = slices.Clone(r.Renewers)
	next := img.clone()
	next.DelegationTokens = withEntry(img.DelegationTokens, r.TokenID, r)
	return next, nil
}

func (img *Image) applyRemoveDelegationToken(r RemoveDelegationToken) (*Image, error) {
	if _, ok := img.DelegationTokens[r.TokenID]; !ok {
		return img, fmt.Errorf("%w: no delegation token %q", ErrInvalidRecord, r.TokenID)
	}
	next := img.clone()
	next.DelegationTokens = withoutEntry(img.DelegationTokens, r.TokenID)
	return next, nil
}

func delegationTokenEqual(a, b DelegationToken) bool {
	return a.TokenID == b.TokenID && a.Owner == b.Owner && a.Requester == b.Requester &&
		slices.Equal(a.Renewers, b.Renewers) && a.IssueTimestamp == b.IssueTimestamp &&
		a.MaxTimestamp == b.MaxTimestamp && a.ExpirationTimestamp == b.ExpirationTimestamp
}

// delegationTokensFromSnapshot rebuilds the tokens of a snapshot.
func delegationTokensFromSnapshot(list []DelegationToken) (map[string]DelegationToken, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]DelegationToken, len(list))
	for _, t := range list {
		if _, dup := out[t.TokenID]; dup || t.TokenID == "" || t.Owner == "" {
			return nil, fmt.Errorf("metadata: decode image: delegation token %q twice or invalid", t.TokenID)
		}
		out[t.TokenID] = t
	}
	return out, nil
}
