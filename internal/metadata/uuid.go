package metadata

import (
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"
)

// UUID is a 128-bit identifier (topic IDs, broker incarnation IDs). Its underlying type is
// [16]byte, so a UUID is assignable to the [16]byte fields of kmsg requests and responses
// without a conversion.
//
// In text (JSON, logs) a UUID is written the way Kafka writes one: 22 characters of URL-safe
// base64 without padding.
type UUID [16]byte

// IsZero reports whether u is the all-zero UUID, which Kafka uses for "no ID".
func (u UUID) IsZero() bool { return u == UUID{} }

// metadataTopicID is the fixed topic ID of KRaft's __cluster_metadata (Kafka's
// Uuid.METADATA_TOPIC_ID, 0x...01), which a random ID must never take.
var metadataTopicID = UUID{15: 1}

// RandomUUID returns a random (version 4) UUID the way Kafka's Uuid.randomUuid does: never
// the zero UUID, never the metadata topic's ID, and never one whose text form starts with
// '-'. Command-line parsers (Kafka's tools use argparse4j) read such a value as an option,
// so "--controller-directory-id -abc..." or "--cluster-id -abc..." would fail.
func RandomUUID() UUID {
	for {
		u := UUID(uuid.New())
		if !u.IsZero() && u != metadataTopicID && u.String()[0] != '-' {
			return u
		}
	}
}

// String returns the Kafka text form of u.
func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// MarshalText implements encoding.TextMarshaler.
func (u UUID) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *UUID) UnmarshalText(text []byte) error {
	parsed, err := ParseUUID(string(text))
	if err != nil {
		return err
	}
	*u = parsed
	return nil
}

// ParseUUID parses the Kafka text form of a UUID (22 characters of URL-safe base64).
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != base64.RawURLEncoding.EncodedLen(len(u)) {
		return UUID{}, fmt.Errorf("metadata: uuid %q: want %d characters", s, base64.RawURLEncoding.EncodedLen(len(u)))
	}
	n, err := base64.RawURLEncoding.Strict().Decode(u[:], []byte(s))
	if err != nil {
		return UUID{}, fmt.Errorf("metadata: uuid %q: %w", s, err)
	}
	if n != len(u) {
		return UUID{}, fmt.Errorf("metadata: uuid %q: decoded %d bytes", s, n)
	}
	return u, nil
}
