package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"hash"
)

// Delegation tokens (KIP-48) authenticate with SCRAM: the username is the token id, the
// password the base64 of the token's HMAC, and the client-first message carries the
// tokenauth=true extension.

// DelegationTokenHMAC is a token's HMAC as Kafka's TokenManager computes it: HMAC-SHA512 of
// the token id, keyed by delegation.token.secret.key.
func DelegationTokenHMAC(secret, tokenID string) []byte {
	m := hmac.New(sha512.New, []byte(secret))
	m.Write([]byte(tokenID))
	return m.Sum(nil)
}

// DelegationTokenPassword is the SCRAM password of a token: the base64 of its HMAC.
func DelegationTokenPassword(secret, tokenID string) string {
	return base64.StdEncoding.EncodeToString(DelegationTokenHMAC(secret, tokenID))
}

// delegationTokenIterations is the iteration count of a token's SCRAM credentials (Kafka's:
// the mechanism's minimum).
const delegationTokenIterations = 4096

// NewDelegationTokenCredential derives the SCRAM credential of a token for a mechanism from
// its password, with a random salt, as each Kafka broker does for the tokens it knows.
func NewDelegationTokenCredential(mechanism, password string) ScramCredential {
	salt := make([]byte, 16)
	rand.Read(salt)
	h := scramHash(mechanism)
	size := h().Size()
	salted, _ := pbkdf2.Key(func() hash.Hash { return h() }, password, salt, delegationTokenIterations, size)
	return NewScramCredential(mechanism, salt, salted, delegationTokenIterations)
}

// DelegationTokenLogin is a token known to the broker, for a SCRAM login with tokenauth=true:
// the token owner's principal, the token's credential for the mechanism, and its expiry
// (milliseconds since the epoch).
type DelegationTokenLogin struct {
	Owner      string
	Credential ScramCredential
	ExpiryMs   int64
}

// DelegationTokenLookup returns what a login with a token id needs; ok is false for a token
// the broker does not know (or that has expired).
type DelegationTokenLookup func(tokenID, mechanism string) (DelegationTokenLogin, bool)
