package metadata

import "testing"

// TestRandomUUIDNeverLooksLikeAnOption draws enough IDs that about 1/64 of raw random ones
// (those whose first base64 character is '-') would have appeared hundreds of times.
func TestRandomUUIDNeverLooksLikeAnOption(t *testing.T) {
	seen := make(map[UUID]bool)
	for i := 0; i < 20000; i++ {
		u := RandomUUID()
		s := u.String()
		if s[0] == '-' {
			t.Fatalf("RandomUUID() = %s starts with '-'", s)
		}
		if u.IsZero() || u == metadataTopicID {
			t.Fatalf("RandomUUID() = %s is reserved", s)
		}
		if seen[u] {
			t.Fatalf("RandomUUID() repeated %s", s)
		}
		seen[u] = true
		back, err := ParseUUID(s)
		if err != nil || back != u {
			t.Fatalf("ParseUUID(%s) = %v, %v", s, back, err)
		}
	}
}
