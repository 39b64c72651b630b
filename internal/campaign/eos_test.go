package campaign

import "testing"

// Each case is one history; the checker must report exactly the anomaly it holds.
func TestCheckEOS(t *testing.T) {
	in := map[int32][]Record{0: {{0, "a-0"}, {1, "a-1"}}, 1: {{0, "a-2"}}}
	good := map[int32][]Record{0: {{0, CopyValue("a-0", "t1")}, {1, CopyValue("a-2", "t1")}, {3, CopyValue("a-1", "t2")}}}
	txns := map[string]CopierTxn{"t1": {TxnCommitted, 2}, "t2": {TxnCommitted, 1}, "t3": {TxnAborted, 4}}
	for _, tc := range []struct {
		name   string
		output map[int32][]Record
		reads  []Read
		txns   map[string]CopierTxn
		check  func(EOSReport) bool
	}{
		{"exactly once", good, []Read{{0, 0, CopyValue("a-0", "t1")}}, txns,
			func(r EOSReport) bool {
				return !r.Failed() && r.Input == 3 && r.Output == 3 && r.Transactions == 3 && r.Committed == 2
			}},
		{"missing copy", map[int32][]Record{0: {{0, CopyValue("a-0", "t1")}, {1, CopyValue("a-2", "t1")}}}, nil,
			map[string]CopierTxn{"t1": {TxnCommitted, 2}},
			func(r EOSReport) bool { return r.Missing == 1 && r.Duplicated == 0 && r.Failed() }},
		{"duplicate copy", map[int32][]Record{0: append(append([]Record{}, good[0]...), Record{5, CopyValue("a-1", "t4")})}, nil,
			map[string]CopierTxn{"t1": {TxnCommitted, 2}, "t2": {TxnCommitted, 1}, "t4": {TxnUnknown, 1}},
			func(r EOSReport) bool { return r.Duplicated == 1 && r.Missing == 0 }},
		{"phantom", map[int32][]Record{0: append(append([]Record{}, good[0]...), Record{5, CopyValue("zz-9", "t2")})}, nil,
			map[string]CopierTxn{"t1": {TxnCommitted, 2}, "t2": {TxnCommitted, 2}},
			func(r EOSReport) bool { return r.Phantom == 1 }},
		{"aborted transaction visible", map[int32][]Record{0: append(append([]Record{}, good[0]...), Record{5, CopyValue("a-1", "t3")})}, nil, txns,
			func(r EOSReport) bool { return r.AbortedSeen == 1 && r.Duplicated == 1 }},
		{"committed transaction not whole", good, nil, map[string]CopierTxn{"t1": {TxnCommitted, 3}, "t2": {TxnCommitted, 1}},
			func(r EOSReport) bool { return r.LostCommit == 1 }},
		{"torn transaction of unknown outcome", good, nil, map[string]CopierTxn{"t1": {TxnUnknown, 3}, "t2": {TxnCommitted, 1}},
			func(r EOSReport) bool { return r.Torn == 1 }},
		{"unknown transaction visible", good, nil, map[string]CopierTxn{"t1": {TxnCommitted, 2}},
			func(r EOSReport) bool { return r.Torn == 1 }},
		{"read of a record the final output lacks (an aborted read)", good, []Read{{0, 2, CopyValue("a-1", "t3")}}, txns,
			func(r EOSReport) bool { return r.Divergent == 1 }},
		{"not a copy", map[int32][]Record{0: append(append([]Record{}, good[0]...), Record{9, "garbage"})}, nil, txns,
			func(r EOSReport) bool { return r.Phantom == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckEOS(in, tc.output, tc.reads, tc.txns)
			if !tc.check(r) {
				t.Errorf("%v; anomalies %v", r, r.Anomalies)
			}
		})
	}
}
