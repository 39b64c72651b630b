package txn

import (
	"errors"
	"testing"
	"time"
)

// harness drives a Shard the way the runtime will: every Write is appended to an in-memory
// partition log (h.log) and acknowledged at once, follow-up writes are appended in turn,
// and markers are remembered until the test writes them. Time only moves with advance.
type harness struct {
	t       *testing.T
	now     time.Time
	set     Settings
	epoch   int32
	nextPID int64
	s       *Shard
	log     []Record
	markers []MarkerRequest
}

func newHarness(t *testing.T, set Settings) *harness {
	h := &harness{t: t, now: time.UnixMilli(1_700_000_000_000), set: set, epoch: 5, nextPID: 1000}
	h.s = NewShard(0, h.epoch, set, h.allocate)
	h.s.FinishLoad(h.now)
	return h
}

func (h *harness) allocate() (int64, error) {
	h.nextPID++
	return h.nextPID, nil
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// run finishes a Result: without a write its answer, else the outcome of appending it.
func (h *harness) run(r Result) Outcome {
	h.t.Helper()
	if r.Write == nil {
		return Outcome{Err: r.Err, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch}
	}
	return h.appendOK(r.Write)
}

// appendOK appends w and its follow-up writes, collecting markers.
func (h *harness) appendOK(w *Write) Outcome {
	h.t.Helper()
	h.log = append(h.log, w.Records...)
	out := h.s.Appended(h.now, w, nil)
	h.markers = append(h.markers, out.Markers...)
	for _, next := range out.Writes {
		h.appendOK(next)
	}
	return out
}

// writeMarkers answers every outstanding marker as written.
func (h *harness) writeMarkers() {
	h.t.Helper()
	ms := h.markers
	h.markers = nil
	for _, m := range ms {
		for _, tp := range m.Partitions {
			mo := h.s.MarkerWritten(m, tp, nil)
			for _, w := range mo.Writes {
				h.appendOK(w)
			}
		}
	}
}

// reload builds a new shard from the log at the next coordinator epoch (failover).
func (h *harness) reload() Outcome {
	h.t.Helper()
	h.epoch++
	h.s = NewShard(0, h.epoch, h.set, h.allocate)
	for _, r := range h.log {
		if err := h.s.Replay(r.Key, r.Value); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
	out := h.s.FinishLoad(h.now)
	h.markers = out.Markers
	for _, w := range out.Writes {
		h.appendOK(w)
	}
	return out
}

func (h *harness) init(id string, pid int64, epoch int16) Outcome {
	h.t.Helper()
	return h.run(h.s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: id, TransactionTimeoutMs: 60000, ProducerID: pid, ProducerEpoch: epoch}))
}

func (h *harness) add(id string, pid int64, epoch int16, tv TransactionVersion, tps ...TopicPartition) Outcome {
	h.t.Helper()
	return h.run(h.s.AddPartitions(h.now, id, pid, epoch, tps, tv))
}

func (h *harness) end(id string, pid int64, epoch int16, commit bool, tv TransactionVersion) Outcome {
	h.t.Helper()
	return h.run(h.s.EndTxn(h.now, id, pid, epoch, commit, tv))
}

func (h *harness) meta(id string) Metadata {
	h.t.Helper()
	m, ok := h.s.Transaction(id)
	if !ok {
		h.t.Fatalf("no transactional id %q", id)
	}
	return m
}

func (h *harness) wantState(id string, st State) Metadata {
	h.t.Helper()
	m := h.meta(id)
	if m.State != st {
		h.t.Fatalf("%s: state %s, want %s", id, m.State, st)
	}
	return m
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) && got != want {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

var (
	tpA = TopicPartition{"a", 0}
	tpB = TopicPartition{"b", 1}
)
