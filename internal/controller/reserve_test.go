package controller

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/internal/fulldisk"
)

// TestMetadataWritesOnAFullDisk fills a real small filesystem holding the metadata store (as
// partition data filling a shared disk would) and checks that metadata writes go on: the
// writes that find no space release the reserve beside raft.db a step at a time, the
// controller stays the leader, a restart on a disk full again (data took the released space)
// works on what is left, and the reserve grows back once space is freed.
func TestMetadataWritesOnAFullDisk(t *testing.T) {
	mnt := fulldisk.Mount(t, 16<<20)
	cfg := testConfig(t, filepath.Join(mnt, "__cluster_metadata-0"))
	cfg.ReserveBytes = 4 << 20
	c := startController(t, cfg)
	reservePath := filepath.Join(cfg.Dir, reserveFile)
	if fi, err := os.Stat(reservePath); err != nil || fi.Size() != cfg.ReserveBytes {
		t.Fatalf("reserve file: %v, %v; want %d bytes", fi, err, cfg.ReserveBytes)
	}
	registerBrokers(t, c, 1)
	free := fulldisk.Fill(t, mnt)

	// About 1.5 MiB of metadata records: more than raft.db's slack, less than the reserve.
	const topics = 25
	ctx := testCtx(t)
	for i := range topics {
		res := c.CreateTopics(ctx, []CreateTopic{{Name: fmt.Sprintf("t%02d", i), NumPartitions: 1000, ReplicationFactor: 1}}, false)
		if res[0].Err != nil {
			t.Fatalf("create topic %d on a full disk: %v (leader: %v)", i, res[0].Err, c.IsLeader())
		}
	}
	if !c.IsLeader() {
		t.Fatal("the controller lost leadership on a full disk")
	}
	fi, err := os.Stat(reservePath)
	if err != nil || fi.Size() >= cfg.ReserveBytes || fi.Size() == 0 {
		t.Fatalf("reserve %v, %v after the writes; want part of it released, part left (the test must fill raft.db's slack)", fi, err)
	}

	// A restart while full: the election and the broker registration write with what is
	// left of the reserve, though partition data took the released part.
	fulldisk.Fill(t, mnt)
	if err := c.Close(); err != nil {
		t.Fatalf("Close on a full disk: %v", err)
	}
	c = startController(t, cfg)
	registerBrokers(t, c, 1)
	if n := len(c.Image().Topics); n != topics {
		t.Fatalf("%d topics after a restart on a full disk, want %d", n, topics)
	}

	// Space returns: the next write after reserveRestoreInterval re-creates the reserve.
	free()
	c.store.r.mu.Lock()
	c.store.r.lastTry = c.store.r.lastTry.Add(-reserveRestoreInterval)
	c.store.r.mu.Unlock()
	if res := c.CreateTopics(ctx, []CreateTopic{{Name: "after", NumPartitions: 1, ReplicationFactor: 1}}, false); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if fi, err := os.Stat(reservePath); err != nil || fi.Size() != cfg.ReserveBytes {
		t.Fatalf("reserve after space returned: %v, %v; want %d bytes", fi, err, cfg.ReserveBytes)
	}
}
