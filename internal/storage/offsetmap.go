package storage

import (
	"hash/maphash"
	"math/bits"
)

// offsetMapLoadFactor is how full the cleaner lets an OffsetMap get, as Kafka's
// log.cleaner.io.buffer.load.factor (0.9 by default).
const offsetMapLoadFactor = 0.9

// offsetMapSlotSize is the memory of one slot: a 128-bit hash of the key and an offset.
const offsetMapSlotSize = 24

// OffsetMap is the cleaner's map from record key to the last offset that key was written at
// (Kafka's SkimpyOffsetMap): an open-addressing table with linear probing whose slots hold a
// 128-bit hash of the key and the offset, 24 bytes each, never the key itself, so its memory is
// fixed when it is made (log.cleaner.dedupe.buffer.size / log.cleaner.threads) whatever the
// keys' sizes. It takes new keys until it is offsetMapLoadFactor full.
//
// The hash is two 64-bit hash/maphash sums of the key under two random seeds (drawn per map,
// so per process). Two distinct keys with the same 128-bit hash would be taken as one key and
// the older record of either could be dropped: among n keys the chance of any such pair is
// about n²/2¹²⁹ (below 10⁻²⁴ for a billion keys), as with Kafka's 16-byte MD5.
//
// An OffsetMap is not safe for concurrent use; a cleaner goroutine keeps one and passes it to
// every Log.Clean it runs (CleanOptions.OffsetMap), which clears it first.
type OffsetMap struct {
	slots      []offsetMapSlot
	free       func() // gives the slots' memory back (Release)
	maxEntries int
	entries    int
	latest     int64 // the largest offset put since the last clear, -1 when none
	seed1      maphash.Seed
	seed2      maphash.Seed
}

// offsetMapSlot is one slot; offsetPlus1 == 0 marks it free (offsets are never negative).
type offsetMapSlot struct {
	hash1, hash2 uint64
	offsetPlus1  int64
}

// NewOffsetMap returns a map using about memoryBytes of memory (at least 16 slots).
func NewOffsetMap(memoryBytes int64) *OffsetMap {
	n := max(memoryBytes/offsetMapSlotSize, 16)
	slots, free := allocSlots(n)
	m := &OffsetMap{
		slots:      slots,
		free:       free,
		maxEntries: int(float64(n) * offsetMapLoadFactor),
		latest:     -1,
		seed1:      maphash.MakeSeed(),
		seed2:      maphash.MakeSeed(),
	}
	releaseWhenUnreachable(m, free)
	return m
}

// Release gives the map's memory back at once; the map must not be used afterwards. A map
// never released gives it back once it is unreachable.
func (m *OffsetMap) Release() {
	m.slots = nil
	m.maxEntries, m.entries = 0, 0
	m.free()
}

// Slots returns the number of slots, MaxEntries the number of keys the map takes.
func (m *OffsetMap) Slots() int { return len(m.slots) }

// MaxEntries returns the number of distinct keys the map takes before it is full.
func (m *OffsetMap) MaxEntries() int { return m.maxEntries }

// Len returns the number of distinct keys in the map.
func (m *OffsetMap) Len() int { return m.entries }

// clear empties the map for a new cleaning.
func (m *OffsetMap) clear() {
	clear(m.slots)
	m.entries = 0
	m.latest = -1
}

// find returns the slot of the key with hashes h1, h2, or the free slot where it would go.
func (m *OffsetMap) find(h1, h2 uint64) *offsetMapSlot {
	n := uint64(len(m.slots))
	i, _ := bits.Mul64(h1, n) // h1 scaled to [0, n)
	for {
		s := &m.slots[i]
		if s.offsetPlus1 == 0 || (s.hash1 == h1 && s.hash2 == h2) {
			return s
		}
		if i++; i == n {
			i = 0
		}
	}
}

func (m *OffsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.seed1, key), maphash.Bytes(m.seed2, key)
}

// put records that key was written at offset (offsets come in increasing order). It returns
// false, changing nothing, when the key is new and the map is full.
func (m *OffsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	s := m.find(h1, h2)
	if s.offsetPlus1 == 0 {
		if m.entries >= m.maxEntries {
			return false
		}
		m.entries++
		s.hash1, s.hash2 = h1, h2
	}
	s.offsetPlus1 = offset + 1
	m.latest = max(m.latest, offset)
	return true
}

// get returns the last offset put for key, or -1.
func (m *OffsetMap) get(key []byte) int64 {
	h1, h2 := m.hash(key)
	return m.find(h1, h2).offsetPlus1 - 1
}

// updateLatest records that the map covers offsets up to offset (a batch whose records had no
// key, or the end of a batch).
func (m *OffsetMap) updateLatest(offset int64) { m.latest = max(m.latest, offset) }
