package wire

import (
	"encoding/binary"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataIndexTag is Samsa's tagged field of the top-level answer to a metadata change on a
// controller listener (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
// IncrementalAlterConfigs, UpdateFeatures, AlterUserScramCredentials, CreateAcls, DeleteAcls,
// AlterClientQuotas, Create/Renew/ExpireDelegationToken; flexible versions only): the metadata log index of the answering node's
// image once it handled the change, 8 bytes big-endian. A broker that forwarded the change
// waits until its own image reaches that index, so it answers after its image shows the change,
// and at once when the change wrote no record (a binding that exists, a feature at its level).
const MetadataIndexTag = 10001

// metadataChangeKeys are the APIs whose controller-listener answers carry MetadataIndexTag.
var metadataChangeKeys = map[int16]bool{
	kmsg.CreateTopics.Int16(): true, kmsg.DeleteTopics.Int16(): true, kmsg.CreatePartitions.Int16(): true,
	kmsg.AlterConfigs.Int16(): true, kmsg.IncrementalAlterConfigs.Int16(): true, kmsg.UpdateFeatures.Int16(): true,
	kmsg.AlterUserSCRAMCredentials.Int16(): true, kmsg.CreateACLs.Int16(): true, kmsg.DeleteACLs.Int16(): true,
	kmsg.AlterClientQuotas.Int16(): true, kmsg.CreateDelegationToken.Int16(): true,
	kmsg.RenewDelegationToken.Int16(): true, kmsg.ExpireDelegationToken.Int16(): true,
}

// SetMetadataIndex adds MetadataIndexTag with index to resp when it answers a metadata change
// (a no-op for other APIs).
func SetMetadataIndex(resp kmsg.Response, index uint64) {
	if resp == nil || !metadataChangeKeys[resp.Key()] {
		return
	}
	if tags := messageTags(resp); tags != nil {
		tags.Set(MetadataIndexTag, binary.BigEndian.AppendUint64(nil, index))
	}
}

// MetadataIndex reads MetadataIndexTag from an answer; ok is false when it has none (an answer
// of a version that is not flexible, or from a node that does not send it).
func MetadataIndex(resp kmsg.Response) (index uint64, ok bool) {
	v, ok := tagValue(resp, MetadataIndexTag)
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// messageTags returns the top-level UnknownTags of a kmsg request or response (every kmsg
// message struct has one), or nil.
func messageTags(msg any) *kmsg.Tags {
	v := reflect.ValueOf(msg)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("UnknownTags")
	if !f.IsValid() || !f.CanAddr() {
		return nil
	}
	tags, _ := f.Addr().Interface().(*kmsg.Tags)
	return tags
}

// tagValue returns the value of a message's top-level tagged field tag; ok is false when the
// message has none.
func tagValue(msg any, tag uint32) (v []byte, ok bool) {
	tags := messageTags(msg)
	if tags == nil {
		return nil, false
	}
	tags.Each(func(t uint32, b []byte) {
		if t == tag {
			v, ok = b, true
		}
	})
	return v, ok
}
