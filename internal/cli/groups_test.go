package cli

import "testing"

func TestPlanReset(t *testing.T) {
	o := PartitionOffsets{Committed: 50, Start: 10, End: 100, AtTime: 70}
	for _, tc := range []struct {
		name string
		s    ResetStrategy
		in   PartitionOffsets
		want int64
	}{
		{"earliest", ResetStrategy{Kind: "earliest"}, o, 10},
		{"latest", ResetStrategy{Kind: "latest"}, o, 100},
		{"to offset", ResetStrategy{Kind: "offset", Offset: 42}, o, 42},
		{"to offset below start clamps", ResetStrategy{Kind: "offset", Offset: 3}, o, 10},
		{"to offset beyond end clamps", ResetStrategy{Kind: "offset", Offset: 500}, o, 100},
		{"datetime", ResetStrategy{Kind: "datetime"}, o, 70},
		{"shift back", ResetStrategy{Kind: "shift", Offset: -20}, o, 30},
		{"shift forward clamps", ResetStrategy{Kind: "shift", Offset: 80}, o, 100},
		{"shift without commit starts at log start", ResetStrategy{Kind: "shift", Offset: 5}, PartitionOffsets{Committed: -1, Start: 10, End: 100}, 15},
	} {
		if got := PlanReset(tc.s, tc.in); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestParseResetStrategy(t *testing.T) {
	n := int64(5)
	if _, err := ParseResetStrategy(false, false, nil, nil, ""); err == nil {
		t.Error("no strategy accepted")
	}
	if _, err := ParseResetStrategy(true, true, nil, nil, ""); err == nil {
		t.Error("two strategies accepted")
	}
	s, err := ParseResetStrategy(false, false, nil, &n, "")
	if err != nil || s.Kind != "shift" || s.Offset != 5 {
		t.Errorf("shift: %+v %v", s, err)
	}
	s, err = ParseResetStrategy(false, false, nil, nil, "2026-01-02T03:04:05.000")
	if err != nil || s.Kind != "datetime" || s.AtMilli != 1767323045000 {
		t.Errorf("datetime: %+v %v", s, err)
	}
}

func TestParseTopicPartitions(t *testing.T) {
	got, err := ParseTopicPartitions([]string{"a", "b:0,2"})
	if err != nil || got["a"] != nil || len(got["b"]) != 2 || got["b"][1] != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{":1", "a:x", "a:-1"} {
		if _, err := ParseTopicPartitions([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGroupProtocolString(t *testing.T) {
	tests := []struct {
		name string
		p    GroupProtocol
		want string
	}{
		{name: "classic", p: GroupProtocol{Type: "consumer", Protocol: "range"}, want: "consumer/range"},
		{name: "classic without protocol", p: GroupProtocol{Type: "consumer"}, want: "consumer"},
		{name: "empty classic", p: GroupProtocol{}, want: "-"},
		{name: "KIP-848", p: GroupProtocol{Type: "consumer", Protocol: "uniform", KIP848: true, Assignor: "uniform"},
			want: "consumer (KIP-848, assignor uniform)"},
		{name: "KIP-848 without assignor", p: GroupProtocol{Type: "consumer", KIP848: true}, want: "consumer (KIP-848)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
