package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataIndexTag: the index survives encoding and decoding of a flexible answer, is
// absent from a version that is not flexible, and is added only to metadata changes.
func TestMetadataIndexTag(t *testing.T) {
	for _, tc := range []struct {
		resp    kmsg.Response
		version int16
		want    bool
	}{
		{kmsg.NewPtrCreateACLsResponse(), 3, true},
		{kmsg.NewPtrCreateACLsResponse(), 1, false},
		{kmsg.NewPtrUpdateFeaturesResponse(), 1, true},
		{kmsg.NewPtrIncrementalAlterConfigsResponse(), 1, true},
		{kmsg.NewPtrMetadataResponse(), 12, false},
	} {
		tc.resp.SetVersion(tc.version)
		SetMetadataIndex(tc.resp, 1234)
		back := tc.resp.Key()
		decoded := kmsg.ResponseForKey(back)
		decoded.SetVersion(tc.version)
		if err := decoded.ReadFrom(tc.resp.AppendTo(nil)); err != nil {
			t.Fatalf("%s v%d: %v", kmsg.NameForKey(back), tc.version, err)
		}
		got, ok := MetadataIndex(decoded)
		if ok != tc.want || (ok && got != 1234) {
			t.Errorf("%s v%d: index %d, %v; want present %v", kmsg.NameForKey(back), tc.version, got, ok, tc.want)
		}
	}
	SetMetadataIndex(nil, 1) // no answer (acks=0): nothing to do
}
