package replica

import (
	"testing"

	"github.com/samsa-io/samsa/internal/storage"
)

// The cleaner picks logs past max.compaction.lag.ms first (the longest overdue first), then
// the highest dirty ratio, as Kafka's LogCleanerManager.
func TestDirtierOrder(t *testing.T) {
	overdueLong := storage.CleanState{MaxCompactionDelayMs: 5000, DirtyRatio: 0.1}
	overdueShort := storage.CleanState{MaxCompactionDelayMs: 10, DirtyRatio: 0.9}
	dirty := storage.CleanState{DirtyRatio: 0.8}
	clean := storage.CleanState{DirtyRatio: 0.2}
	ordered := []storage.CleanState{overdueLong, overdueShort, dirty, clean}
	for i := range ordered {
		for j := range ordered {
			if got, want := dirtier(ordered[i], ordered[j]), i < j; got != want {
				t.Errorf("dirtier(%d, %d) = %v, want %v", i, j, got, want)
			}
		}
	}
}
