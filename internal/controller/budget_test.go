package controller

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/internal/metadata"
)

func TestBudget(t *testing.T) {
	parts := func(n int, replicas ...int32) []metadata.Partition {
		out := make([]metadata.Partition, n)
		for i := range out {
			out[i] = metadata.Partition{Partition: int32(i), Replicas: replicas}
		}
		return out
	}
	img := &metadata.Image{Topics: map[string]*metadata.Topic{"a": {Name: "a", Partitions: parts(6, 1)}}}
	tests := []struct {
		name    string
		max     int
		takes   [][]metadata.Partition
		wantErr []bool
	}{
		{"no limit", 0, [][]metadata.Partition{parts(1000, 1)}, []bool{false}},
		{"fits exactly", 10, [][]metadata.Partition{parts(4, 1)}, []bool{false}},
		{"one over", 10, [][]metadata.Partition{parts(5, 1)}, []bool{true}},
		{"counts earlier topics of the request", 10, [][]metadata.Partition{parts(3, 1), parts(2, 1), parts(1, 1)}, []bool{false, true, false}},
		{"other brokers have their own budget", 10, [][]metadata.Partition{parts(10, 2), parts(1, 2)}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Controller{cfg: Config{MaxPartitionsPerBroker: tt.max}}
			b := c.newBudget(img)
			for i, p := range tt.takes {
				err := b.take(p)
				if (err != nil) != tt.wantErr[i] {
					t.Fatalf("take %d: err %v, want error %v", i, err, tt.wantErr[i])
				}
				if err != nil && !errors.Is(err, kerr.PolicyViolation) {
					t.Fatalf("take %d: %v is not POLICY_VIOLATION", i, err)
				}
			}
		})
	}
}
