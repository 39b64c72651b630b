package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A verification answered CONCURRENT_TRANSACTIONS (the previous transaction's markers still
// being written) is asked again until it is answered otherwise or the total wait is spent;
// other answers return at once.
func TestRetryConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answers   []error // the answers in order; the last repeats
		total     time.Duration
		wantErr   error
		wantCalls int
		atLeast   bool // wantCalls is a minimum (the total wait decides the rest)
	}{
		{"answered at once", []error{nil}, time.Second, nil, 1, false},
		{"other error at once", []error{kerr.ProducerFenced}, time.Second, kerr.ProducerFenced, 1, false},
		{"completes after two", []error{kerr.ConcurrentTransactions, kerr.ConcurrentTransactions, nil}, time.Second, nil, 3, false},
		{"gives up after the total wait", []error{kerr.ConcurrentTransactions}, 30 * time.Millisecond, kerr.ConcurrentTransactions, 2, true},
		{"no wait allowed", []error{kerr.ConcurrentTransactions}, 0, kerr.ConcurrentTransactions, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryConcurrent(context.Background(), 20*time.Millisecond, tc.total, func() error {
				calls++
				return tc.answers[min(calls, len(tc.answers))-1]
			})
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if calls < tc.wantCalls || !tc.atLeast && calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retryConcurrent(ctx, time.Millisecond, time.Hour, func() error { return kerr.ConcurrentTransactions }); !errors.Is(err, context.Canceled) {
		t.Errorf("with a canceled context: %v", err)
	}
}
