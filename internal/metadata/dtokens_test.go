package metadata

import (
	"errors"
	"testing"
)

func TestDelegationTokenRecords(t *testing.T) {
	tok := DelegationToken{TokenID: "tok1", Owner: "User:alice", Requester: "User:admin", Renewers: []string{"User:bob"},
		IssueTimestamp: 1000, MaxTimestamp: 5000, ExpirationTimestamp: 2000}
	img := build(t, Bootstrap{ClusterID: "c"}, tok, DelegationToken{TokenID: "tok2", Owner: "User:bob", Requester: "User:bob", MaxTimestamp: 9, ExpirationTimestamp: 9})
	if got := img.DelegationTokenIDs(); len(got) != 2 || got[0] != "tok1" || !delegationTokenEqual(img.DelegationTokens["tok1"], tok) {
		t.Fatalf("tokens %+v", img.DelegationTokens)
	}
	rec := must(DecodeRecord(must(EncodeRecord(tok))))
	if !delegationTokenEqual(rec.(DelegationToken), tok) {
		t.Errorf("decoded %+v", rec)
	}
	back := must(DecodeImage(must(EncodeImage(img))))
	if !Equal(img, back) || len(back.DelegationTokens) != 2 {
		t.Fatalf("snapshot round trip: %+v", back.DelegationTokens)
	}
	// A renewal is the same record with a later expiry: it replaces the token.
	renewed := tok
	renewed.ExpirationTimestamp = 3000
	next := must(img.Apply(renewed))
	if next.DelegationTokens["tok1"].ExpirationTimestamp != 3000 || img.DelegationTokens["tok1"].ExpirationTimestamp != 2000 || Equal(img, next) {
		t.Fatalf("renewal: %+v", next.DelegationTokens["tok1"])
	}
	removed := must(img.Apply(RemoveDelegationToken{TokenID: "tok1"}))
	if len(removed.DelegationTokens) != 1 || len(img.DelegationTokens) != 2 {
		t.Fatalf("remove: %+v", removed.DelegationTokens)
	}
	for _, r := range []Record{
		RemoveDelegationToken{TokenID: "nope"},
		DelegationToken{Owner: "User:a"},
		DelegationToken{TokenID: "x"},
	} {
		if _, err := img.Apply(r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("apply %+v: %v", r, err)
		}
	}
	if !tok.Expired(2001) || tok.Expired(2000) || !tok.OwnerOrRenewer("User:bob") || !tok.OwnerOrRenewer("User:admin") || tok.OwnerOrRenewer("User:carol") ||
		!tok.MayRenew("User:alice") || !tok.MayRenew("User:bob") || tok.MayRenew("User:admin") {
		t.Error("Expired / OwnerOrRenewer / MayRenew")
	}
}
