package replica

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/metadata"
	"github.com/samsa-io/samsa/internal/storage"
)

func testManager(t *testing.T) *Manager {
	t.Helper()
	m := NewManager(Config{
		Dir:                    t.TempDir(),
		NodeID:                 1,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		LogConfig:              func(map[string]string) storage.LogConfig { return storage.DefaultLogConfig() },
		RetentionCheckInterval: time.Hour,
	})
	t.Cleanup(func() { m.Close() })
	return m
}

func image(index uint64, topics ...*metadata.Topic) *metadata.Image {
	img := &metadata.Image{Index: index, Topics: map[string]*metadata.Topic{}, TopicsByID: map[metadata.UUID]*metadata.Topic{}}
	for _, t := range topics {
		img.Topics[t.Name] = t
		img.TopicsByID[t.ID] = t
	}
	return img
}

func topic(name string, id byte, partitions int, replicas ...int32) *metadata.Topic {
	t := &metadata.Topic{Name: name, ID: metadata.UUID{id}}
	for p := 0; p < partitions; p++ {
		t.Partitions = append(t.Partitions, metadata.Partition{Partition: int32(p), Replicas: replicas, ISR: replicas, Leader: replicas[0]})
	}
	return t
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestManagerFollowsImages(t *testing.T) {
	m := testManager(t)
	if err := m.Apply(image(1, topic("a", 1, 2, 1), topic("elsewhere", 2, 1, 2))); err != nil {
		t.Fatal(err)
	}
	if m.Partition("a", 0) == nil || m.Partition("a", 1) == nil {
		t.Fatal("partitions of a are not hosted")
	}
	if m.Partition("elsewhere", 0) != nil || exists(filepath.Join(m.cfg.Dir, "elsewhere-0")) {
		t.Fatal("a partition replicated only by node 2 is hosted here")
	}
	meta, err := os.ReadFile(filepath.Join(m.cfg.Dir, "a-0", partitionMetadataFile))
	if err != nil || !strings.Contains(string(meta), "topic_id: "+metadata.UUID{1}.String()) {
		t.Fatalf("partition.metadata: %q %v", meta, err)
	}

	// The topic is deleted: its partitions and directories go.
	if err := m.Apply(image(2)); err != nil {
		t.Fatal(err)
	}
	if m.Partition("a", 0) != nil {
		t.Fatal("deleted topic still hosted")
	}

	// Recreated under the same name with a new id: it starts empty, in a fresh directory.
	if err := m.Apply(image(3, topic("a", 3, 1, 1))); err != nil {
		t.Fatal(err)
	}
	p := m.Partition("a", 0)
	if p == nil || p.TopicID != (metadata.UUID{3}) || p.Log().LogEndOffset() != 0 {
		t.Fatalf("recreated topic: %+v", p)
	}
}

func TestManagerRemovesDirectoriesOfOlderTopics(t *testing.T) {
	m := testManager(t)
	// Left behind by a topic "b" (id 7) deleted while the node was down, and a stray one.
	for dir, id := range map[string]metadata.UUID{"b-0": {7}, "gone-3": {8}} {
		path := filepath.Join(m.cfg.Dir, dir)
		os.MkdirAll(path, 0o755)
		os.WriteFile(filepath.Join(path, partitionMetadataFile), []byte("version: 0\ntopic_id: "+id.String()+"\n"), 0o644)
		os.WriteFile(filepath.Join(path, "marker"), []byte("old"), 0o644)
	}
	os.MkdirAll(filepath.Join(m.cfg.Dir, "not-a-partition"), 0o755)
	if err := m.Apply(image(1, topic("b", 9, 1, 1))); err != nil {
		t.Fatal(err)
	}
	if m.Partition("b", 0) == nil { // its log opens on first use
		t.Fatal("b-0 not hosted")
	}
	if exists(filepath.Join(m.cfg.Dir, "b-0", "marker")) {
		t.Fatal("the directory of the older topic b was reused")
	}
	if exists(filepath.Join(m.cfg.Dir, "gone-3")) {
		t.Fatal("stray partition directory kept")
	}
	if !exists(filepath.Join(m.cfg.Dir, "not-a-partition")) {
		t.Fatal("a directory without partition.metadata was removed")
	}
}

func TestWaitApplied(t *testing.T) {
	m := testManager(t)
	done := make(chan error, 1)
	go func() { done <- m.WaitApplied(context.Background(), 5) }()
	if err := m.Apply(image(4)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("returned at index 4: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := m.Apply(image(5)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.WaitApplied(ctx, 99); err == nil {
		t.Fatal("WaitApplied ignored its context")
	}
}

func TestApplyContextStopsOpeningPartitionsWhenCancelled(t *testing.T) {
	m := testManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.ApplyContext(ctx, image(1, topic("a", 1, 3, 1)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyContext with a cancelled context: %v, want context.Canceled", err)
	}
	if n := len(m.Partitions()); n != 0 {
		t.Fatalf("%d partitions opened after cancellation", n)
	}
	done, stop := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop()
	if m.WaitApplied(done, 1) == nil {
		t.Fatal("an image whose partitions were not opened was marked applied")
	}
	// The next apply opens them all.
	if err := m.ApplyContext(context.Background(), image(1, topic("a", 1, 3, 1))); err != nil {
		t.Fatal(err)
	}
	if n := len(m.Partitions()); n != 3 {
		t.Fatalf("%d partitions after a full apply, want 3", n)
	}
}

// TestUnopenablePartitionsGoOffline checks that partitions whose logs cannot be opened do not
// fail Apply: they are offline (the others open), reported in one log line per pass with a
// count, not retried by later images before their backoff, and opened by a retry once the
// cause is gone.
func TestUnopenablePartitionsGoOffline(t *testing.T) {
	var logs strings.Builder
	m := NewManager(Config{
		Dir:                    t.TempDir(),
		NodeID:                 1,
		Logger:                 slog.New(slog.NewTextHandler(&logs, nil)),
		LogConfig:              func(map[string]string) storage.LogConfig { return storage.DefaultLogConfig() },
		RetentionCheckInterval: time.Hour,
		RetryBackoff:           time.Hour, // only the explicit retry below may reopen
	})
	t.Cleanup(func() { m.Close() })
	// A regular file where a partition directory belongs makes its log fail to open.
	blocked := []int{1, 3, 4}
	for _, p := range blocked {
		if err := os.WriteFile(filepath.Join(m.cfg.Dir, "a-"+strconv.Itoa(p)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := topic("a", 1, 6, 1)
	for i := uint64(1); i <= 3; i++ {
		if err := m.Apply(image(i, a)); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if n := m.OfflineCount(); n != 0 {
			t.Fatalf("Apply opened logs: %d offline", n)
		}
	}
	// Logs open on first use: one pass over all of them, then uses that must not retry
	// before the backoff.
	if n := len(m.Partitions()); n != 3 {
		t.Fatalf("%d partitions open, want 3", n)
	}
	for p := range 6 {
		wantOffline := slices.Contains(blocked, p)
		if got := m.Offline("a", int32(p)); got != wantOffline {
			t.Errorf("a-%d offline = %v, want %v", p, got, wantOffline)
		}
		if got := m.Partition("a", int32(p)) != nil; got == wantOffline {
			t.Errorf("a-%d hosted = %v", p, got)
		}
	}
	if n := strings.Count(logs.String(), "partitions offline"); n != 1 {
		t.Fatalf("%d offline log lines, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "failed=3") {
		t.Fatalf("the log line does not count the partitions:\n%s", logs.String())
	}
	for _, p := range blocked {
		os.Remove(filepath.Join(m.cfg.Dir, "a-"+strconv.Itoa(p)))
	}
	m.mu.Lock()
	for _, o := range m.mu.offline {
		o.next = time.Time{} // backoff over
	}
	m.mu.Unlock()
	m.RetryOffline()
	if n := m.OfflineCount(); n != 0 {
		t.Fatalf("%d partitions still offline after the retry", n)
	}
	for _, p := range blocked {
		if m.Partition("a", int32(p)) == nil {
			t.Fatalf("a-%d not hosted after the retry", p)
		}
	}
}

// TestLogsOpenOnFirstUse checks that Apply opens no log (start-up and topic creation do no
// log I/O): a partition's log opens on its first use, a partition deleted before any use has
// its directory removed, and Close leaves logs never opened as they are.
func TestLogsOpenOnFirstUse(t *testing.T) {
	m := testManager(t)
	if err := m.Apply(image(1, topic("a", 1, 2, 1))); err != nil {
		t.Fatal(err)
	}
	if len(m.openPartitions()) != 0 || exists(filepath.Join(m.cfg.Dir, "a-0")) {
		t.Fatal("Apply opened a log")
	}
	p := m.Partition("a", 0)
	if p == nil || !exists(filepath.Join(m.cfg.Dir, "a-0", partitionMetadataFile)) {
		t.Fatal("a-0 not opened on first use")
	}
	if m.Partition("a", 0) != p {
		t.Fatal("a second use opened the log again")
	}
	if n := len(m.openPartitions()); n != 1 {
		t.Fatalf("%d logs open after using one partition", n)
	}
	// A directory left by a previous run, never opened in this one, goes with its topic.
	stale := filepath.Join(m.cfg.Dir, "a-1")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(image(2)); err != nil {
		t.Fatal(err)
	}
	if exists(stale) || exists(filepath.Join(m.cfg.Dir, "a-0")) {
		t.Fatal("directories of a deleted topic kept")
	}
}
