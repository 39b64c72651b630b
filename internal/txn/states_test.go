package txn

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// toState brings transactional id "t" to st with a client of version tv and returns the
// producer id and epoch that client holds. Prepare states are left with their markers
// unwritten (the completion pending, as while markers are in flight).
func toState(h *harness, st State, tv TransactionVersion) (int64, int16) {
	h.t.Helper()
	o := h.init("t", -1, -1)
	pid, epoch := o.ProducerID, o.ProducerEpoch
	if st == StateEmpty {
		return pid, epoch
	}
	h.add("t", pid, epoch, tv, tpA)
	if st == StateOngoing {
		return pid, epoch
	}
	commit := st == StatePrepareCommit || st == StateCompleteCommit
	o = h.end("t", pid, epoch, commit, tv)
	if o.Err != nil {
		h.t.Fatalf("end: %v", o.Err)
	}
	if st == StateCompleteCommit || st == StateCompleteAbort {
		h.writeMarkers()
		epoch = o.ProducerEpoch
	}
	h.wantState("t", st)
	return pid, epoch
}

// TestEveryAPIInEveryState checks Kafka's answer of InitProducerId, AddPartitionsToTxn and
// EndTxn (commit and abort, with the client's current epoch and, for TV2, the epoch before
// the last bump: a retry) in every state, for pre-TV2 and TV2 clients.
func TestEveryAPIInEveryState(t *testing.T) {
	ok := error(nil)
	type row struct {
		state                    State
		init, add, commit, abort error
		retryCommit, retryAbort  error // TV2 only: the epoch before the last bump
		checkRetry               bool
	}
	cc := kerr.ConcurrentTransactions
	its := kerr.InvalidTxnState
	pf := kerr.ProducerFenced
	tables := map[TransactionVersion][]row{
		TV0: {
			{state: StateEmpty, init: ok, add: ok, commit: its, abort: its},
			{state: StateOngoing, init: cc, add: ok, commit: ok, abort: ok},
			{state: StatePrepareCommit, init: cc, add: cc, commit: cc, abort: cc},
			{state: StatePrepareAbort, init: cc, add: cc, commit: cc, abort: cc},
			{state: StateCompleteCommit, init: ok, add: ok, commit: ok, abort: its},
			{state: StateCompleteAbort, init: ok, add: ok, commit: its, abort: ok},
		},
		TV2: {
			{state: StateEmpty, init: ok, add: ok, commit: its, abort: ok, retryCommit: pf, retryAbort: pf, checkRetry: true},
			{state: StateOngoing, init: cc, add: ok, commit: ok, abort: ok, retryCommit: pf, retryAbort: pf, checkRetry: true},
			{state: StatePrepareCommit, init: cc, add: cc, commit: cc, abort: cc},
			{state: StatePrepareAbort, init: cc, add: cc, commit: cc, abort: cc},
			{state: StateCompleteCommit, init: ok, add: ok, commit: its, abort: ok, retryCommit: ok, retryAbort: its, checkRetry: true},
			{state: StateCompleteAbort, init: ok, add: ok, commit: its, abort: ok, retryCommit: its, retryAbort: ok, checkRetry: true},
		},
	}
	for tv, rows := range tables {
		for _, r := range rows {
			name := r.state.String() + "/TV" + string(rune('0'+tv))
			t.Run(name, func(t *testing.T) {
				check := func(op string, want error, do func(h *harness, pid int64, epoch int16) Outcome) {
					h := newHarness(t, DefaultSettings())
					pid, epoch := toState(h, r.state, tv)
					got := do(h, pid, epoch)
					wantErr(t, op, got.Err, want)
				}
				check("InitProducerId", r.init, func(h *harness, _ int64, _ int16) Outcome { return h.init("t", -1, -1) })
				check("AddPartitions", r.add, func(h *harness, pid int64, epoch int16) Outcome {
					return h.add("t", pid, epoch, tv, tpB)
				})
				check("EndTxn commit", r.commit, func(h *harness, pid int64, epoch int16) Outcome {
					return h.end("t", pid, epoch, true, tv)
				})
				check("EndTxn abort", r.abort, func(h *harness, pid int64, epoch int16) Outcome {
					return h.end("t", pid, epoch, false, tv)
				})
				if r.checkRetry {
					check("EndTxn commit retry", r.retryCommit, func(h *harness, pid int64, epoch int16) Outcome {
						return h.end("t", pid, epoch-1, true, tv)
					})
					check("EndTxn abort retry", r.retryAbort, func(h *harness, pid int64, epoch int16) Outcome {
						return h.end("t", pid, epoch-1, false, tv)
					})
				}
				// Every API refuses another producer id, and a stale epoch, in every state.
				h := newHarness(t, DefaultSettings())
				pid, epoch := toState(h, r.state, tv)
				if r.state != StatePrepareCommit && r.state != StatePrepareAbort {
					wantErr(t, "add with a wrong producer id", h.add("t", pid+1, epoch, tv, tpA).Err, kerr.InvalidProducerIDMapping)
					wantErr(t, "end with a wrong producer id", h.end("t", pid+1, epoch, true, tv).Err, kerr.InvalidProducerIDMapping)
					wantErr(t, "add with a newer epoch", h.add("t", pid, epoch+1, tv, tpA).Err, kerr.ProducerFenced)
					wantErr(t, "end with a newer epoch", h.end("t", pid, epoch+1, true, tv).Err, kerr.ProducerFenced)
				}
			})
		}
	}
}

func TestUnknownIDAndBadRequests(t *testing.T) {
	h := newHarness(t, DefaultSettings())
	wantErr(t, "add unknown", h.add("nope", 1, 0, TV0, tpA).Err, kerr.InvalidProducerIDMapping)
	wantErr(t, "end unknown", h.end("nope", 1, 0, true, TV2).Err, kerr.InvalidProducerIDMapping)
	wantErr(t, "add empty id", h.add("", 1, 0, TV0, tpA).Err, kerr.InvalidRequest)
	wantErr(t, "init empty id", h.init("", -1, -1).Err, kerr.InvalidRequest)
	wantErr(t, "init half a producer", h.init("x", 5, -1).Err, kerr.InvalidRequest)
	for _, ms := range []int32{0, -1, 900001} {
		r := h.s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: "x", TransactionTimeoutMs: ms, ProducerID: -1, ProducerEpoch: -1})
		wantErr(t, "init timeout", r.Err, kerr.InvalidTransactionTimeout)
	}
	r := h.s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: "x", TransactionTimeoutMs: 900000, ProducerID: -1, ProducerEpoch: -1})
	if o := h.run(r); o.Err != nil || o.ProducerID != 1001 || o.ProducerEpoch != 0 {
		t.Fatalf("init at the maximum timeout: %+v", o)
	}
	// A shard still loading answers COORDINATOR_LOAD_IN_PROGRESS.
	s := NewShard(0, 1, DefaultSettings(), h.allocate)
	wantErr(t, "init while loading", s.InitProducerID(h.now, InitProducerIDRequest{TransactionalID: "x", TransactionTimeoutMs: 1000, ProducerID: -1, ProducerEpoch: -1}).Err, kerr.CoordinatorLoadInProgress)
	wantErr(t, "end while loading", s.EndTxn(h.now, "x", 1, 0, true, TV2).Err, kerr.CoordinatorLoadInProgress)
}

// TestOldClientsGetInvalidProducerEpoch checks the version mapping of PRODUCER_FENCED.
func TestOldClientsGetInvalidProducerEpoch(t *testing.T) {
	for _, c := range []struct {
		key, version int16
		want         error
	}{
		{apiInitProducerID, 3, kerr.InvalidProducerEpoch},
		{apiInitProducerID, 4, kerr.ProducerFenced},
		{apiEndTxn, 1, kerr.InvalidProducerEpoch},
		{apiEndTxn, 2, kerr.ProducerFenced},
		{apiAddPartitionsToTx, 1, kerr.InvalidProducerEpoch},
		{apiAddOffsetsToTxn, 2, kerr.ProducerFenced},
	} {
		if got := ClientError(c.key, c.version, kerr.ProducerFenced); got != c.want {
			t.Errorf("api %d v%d: %v, want %v", c.key, c.version, got, c.want)
		}
	}
	if got := ClientError(apiEndTxn, 0, kerr.ConcurrentTransactions); got != kerr.ConcurrentTransactions {
		t.Errorf("other errors changed: %v", got)
	}
}
