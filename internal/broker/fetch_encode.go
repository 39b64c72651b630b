package broker

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/storage"
)

// Fetch responses are the broker's largest: encoding them with kmsg would copy every record
// batch into one growing buffer (and compare tagged fields by reflection per partition). This
// encoder writes the same bytes as kmsg but leaves the record batches where they are: it returns
// the frame as segments (metadata runs and record-set slices) for one vectored write.

// fetchEncodable reports whether resp uses only what appendFetchFrame encodes: no tagged
// fields (diverging epoch, current leader, snapshot id, node endpoints) and no unknown tags.
// Other responses go through kmsg.
func fetchEncodable(resp *kmsg.FetchResponse) bool {
	if len(resp.Brokers) > 0 || resp.UnknownTags.Len() > 0 {
		return false
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 ||
				p.UnknownTags.Len() > 0 {
				return false
			}
			for k := range p.AbortedTransactions {
				if p.AbortedTransactions[k].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// outSeg is one piece of a response frame: bytes in memory, or a range of a segment file to
// send with sendfile.
type outSeg struct {
	mem    []byte
	region *storage.Region
}

// segmentWriter accumulates a frame as metadata bytes, borrowed record slices and file
// regions.
type segmentWriter struct {
	meta  []byte
	start int // where the current metadata run begins in meta
	segs  []outSeg
	total int64
}

// cut ends the current metadata run.
func (w *segmentWriter) cut() {
	w.segs = append(w.segs, outSeg{mem: w.meta[w.start:]})
	w.start = len(w.meta)
}

// borrow appends b without copying it.
func (w *segmentWriter) borrow(b []byte) {
	if len(b) == 0 {
		return
	}
	w.cut()
	w.segs = append(w.segs, outSeg{mem: b})
	w.total += int64(len(b))
}

// region appends a file range.
func (w *segmentWriter) region(r *storage.Region) {
	w.cut()
	w.segs = append(w.segs, outSeg{region: r})
	w.total += r.Len
}

func (w *segmentWriter) finish() []outSeg {
	if w.start < len(w.meta) || len(w.segs) == 0 {
		w.segs = append(w.segs, outSeg{mem: w.meta[w.start:]})
	}
	w.total += int64(len(w.meta))
	return w.segs
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendArrayLen(dst []byte, n int, flexible bool) []byte {
	if flexible {
		return appendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

func appendString(dst []byte, s string, flexible bool) []byte {
	if flexible {
		dst = appendUvarint(dst, uint64(len(s))+1)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	}
	return append(dst, s...)
}

// appendFetchFrame encodes a whole response frame (size prefix, correlation id, header tags,
// body) for resp, which must satisfy fetchEncodable. The record batches are referenced, not
// copied, and a partition with an entry in regions sends that file range instead of its
// RecordBatches; the segments stay valid as long as the response does.
func appendFetchFrame(meta []byte, correlationID int32, resp *kmsg.FetchResponse, regions map[*kmsg.FetchResponseTopicPartition]*storage.Region) []outSeg {
	v := resp.Version
	flexible := v >= 12
	w := segmentWriter{meta: meta[:0]}
	m := w.meta
	m = append(m, 0, 0, 0, 0) // size, filled in below
	m = binary.BigEndian.AppendUint32(m, uint32(correlationID))
	if flexible {
		m = append(m, 0) // response header tags
	}
	if v >= 1 {
		m = binary.BigEndian.AppendUint32(m, uint32(resp.ThrottleMillis))
	}
	if v >= 7 {
		m = binary.BigEndian.AppendUint16(m, uint16(resp.ErrorCode))
		m = binary.BigEndian.AppendUint32(m, uint32(resp.SessionID))
	}
	m = appendArrayLen(m, len(resp.Topics), flexible)
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if v <= 12 {
			m = appendString(m, t.Topic, flexible)
		} else {
			m = append(m, t.TopicID[:]...)
		}
		m = appendArrayLen(m, len(t.Partitions), flexible)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			m = binary.BigEndian.AppendUint32(m, uint32(p.Partition))
			m = binary.BigEndian.AppendUint16(m, uint16(p.ErrorCode))
			m = binary.BigEndian.AppendUint64(m, uint64(p.HighWatermark))
			if v >= 4 {
				m = binary.BigEndian.AppendUint64(m, uint64(p.LastStableOffset))
			}
			if v >= 5 {
				m = binary.BigEndian.AppendUint64(m, uint64(p.LogStartOffset))
			}
			if v >= 4 {
				at := p.AbortedTransactions
				switch {
				case at == nil && flexible:
					m = append(m, 0)
				case at == nil:
					m = binary.BigEndian.AppendUint32(m, 0xffffffff)
				default:
					m = appendArrayLen(m, len(at), flexible)
				}
				for k := range at {
					m = binary.BigEndian.AppendUint64(m, uint64(at[k].ProducerID))
					m = binary.BigEndian.AppendUint64(m, uint64(at[k].FirstOffset))
					if flexible {
						m = append(m, 0)
					}
				}
			}
			if v >= 11 {
				m = binary.BigEndian.AppendUint32(m, uint32(p.PreferredReadReplica))
			}
			rb := p.RecordBatches
			reg := regions[p]
			n := int64(len(rb))
			if reg != nil {
				n = reg.Len
			}
			switch {
			case rb == nil && reg == nil && flexible:
				m = append(m, 0)
			case rb == nil && reg == nil:
				m = binary.BigEndian.AppendUint32(m, 0xffffffff)
			case flexible:
				m = appendUvarint(m, uint64(n)+1)
			default:
				m = binary.BigEndian.AppendUint32(m, uint32(n))
			}
			w.meta = m
			if reg != nil {
				w.region(reg)
			} else {
				w.borrow(rb)
			}
			m = w.meta
			if flexible {
				m = append(m, 0) // partition tags
			}
		}
		if flexible {
			m = append(m, 0) // topic tags
		}
	}
	if flexible {
		m = append(m, 0) // response tags
	}
	w.meta = m
	segs := w.finish()
	binary.BigEndian.PutUint32(segs[0].mem, uint32(w.total-4))
	return segs
}
