package crashtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/fulldisk"
	"github.com/samsa-io/samsa/internal/records"
	"github.com/samsa-io/samsa/internal/storage"
)

// TestFullDisk runs a real samsa without a free-space floor on a small real filesystem
// (tmpfs): it produces until the disk is full (the producer gets KAFKA_STORAGE_ERROR, the Produce response names the full
// directory, the broker logs the episode once), reads everything while full, stops cleanly
// (exit status 0) and starts again while full, deletes a topic to make room, and produces
// again; every acknowledged record stays readable throughout.
func TestFullDisk(t *testing.T) {
	dir, settings, p, spare, acked := fillDisk(t, 16<<20, "samsa.metadata.reserve.bytes=2097152", "samsa.log.dir.min.free.bytes=0")

	resp := produceRawRecord(t, p.addr, "full")
	partDir := filepath.Join(dir, "full-0")
	if resp.ErrorCode != kerr.KafkaStorageError.Code || resp.ErrorMessage == nil ||
		!strings.HasPrefix(*resp.ErrorMessage, "no space left on device in "+partDir+" (free ") {
		t.Fatalf("produce on a full disk: error %d, message %v; want KAFKA_STORAGE_ERROR naming %s", resp.ErrorCode, resp.ErrorMessage, partDir)
	}
	if n := strings.Count(p.stderr.String(), "disk full: refusing appends"); n != 1 {
		t.Fatalf("%d disk-full log lines for one partition's episode, want 1; stderr:\n%s", n, p.stderr.String())
	}
	checkRecords(t, p.addr, "full", acked)
	checkLogDirUsage(t, p.addr, 16<<20)

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("clean shutdown on a full disk exited with %v; stderr:\n%s", err, p.stderr.String())
	}
	p = startServer(t, dir, settings...)
	checkRecords(t, p.addr, "full", acked)
	checkRecords(t, p.addr, "spare", spare)

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("full"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopic(ctx, "spare"); err != nil {
		t.Fatalf("DeleteTopics on a full disk: %v", err)
	}
	// The producer retries KAFKA_STORAGE_ERROR until the deletion has freed the space.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after freeing space: %v; stderr:\n%s", err, p.stderr.String())
	}
	checkRecords(t, p.addr, "full", append(acked, "after"))
}

// TestFullDiskFloor runs a real samsa with a free-space floor and no metadata reserve on a
// small real filesystem (tmpfs): produce stops at the floor with KAFKA_STORAGE_ERROR naming
// the log directory and the floor, leaving the space the metadata log needs: 100 metadata
// writes succeed (without the floor the 13th fails), a restart succeeds and the node stays
// the controller: it deletes a topic, then creates one once the space is back, and every
// acknowledged record stays readable.
func TestFullDiskFloor(t *testing.T) {
	const floor = 4 << 20
	dir, settings, p, _, acked := fillDisk(t, 32<<20, "samsa.metadata.reserve.bytes=0", fmt.Sprintf("samsa.log.dir.min.free.bytes=%d", floor))
	// Take what the 1 KiB batches left, to the last bytes the data may take.
	acked = append(acked, produceSizedUntilFull(t, p.addr, "full", -1, 0)...)
	resp := produceRawRecord(t, p.addr, "full")
	if msg := resp.ErrorMessage; resp.ErrorCode != kerr.KafkaStorageError.Code || msg == nil ||
		!strings.Contains(*msg, "log directory "+dir+" ") || !strings.Contains(*msg, fmt.Sprintf("samsa.log.dir.min.free.bytes=%d", floor)) {
		t.Fatalf("produce below the floor: error %d, message %v; want KAFKA_STORAGE_ERROR naming %s and the floor", resp.ErrorCode, resp.ErrorMessage, dir)
	}
	if _, free, err := storage.DiskUsage(dir); err != nil || free < floor/2 {
		t.Fatalf("%d bytes free below the floor (%v), want the floor's room kept", free, err)
	}
	alterConfigs(t, p.addr, "full", 100)

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.waitExit(t, 30*time.Second); err != nil {
		t.Fatalf("clean shutdown below the floor exited with %v; stderr:\n%s", err, p.stderr.String())
	}
	p = startServer(t, dir, settings...)
	checkRecords(t, p.addr, "full", acked)

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, "spare"); err != nil {
		t.Fatalf("DeleteTopics after a restart below the floor: %v; stderr:\n%s", err, p.stderr.String())
	}
	// The deletion frees the space asynchronously: CreateTopics answers KAFKA_STORAGE_ERROR
	// until the log directory is above the floor again.
	for {
		resp, err := adm.CreateTopics(ctx, 1, 1, nil, "after")
		if err == nil {
			err = resp["after"].Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.KafkaStorageError) || ctx.Err() != nil {
			t.Fatalf("creating a topic after freeing space: %v; stderr:\n%s", err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "after", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce to the new topic: %v", err)
	}
	checkRecords(t, p.addr, "after", []string{"after"})
	checkRecords(t, p.addr, "full", acked)
}

// fillDisk mounts a tmpfs of size bytes, starts samsa on a directory in it with 1 MiB
// segments, no delete delay and the extra settings, and fills it: 4 MiB of records to topic
// "spare", then topic "full" until produce is refused. It returns the log directory, the
// settings, the process and the records acknowledged to each topic.
func fillDisk(t *testing.T, size int64, extra ...string) (dir string, settings []string, p *proc, spare, acked []string) {
	t.Helper()
	dir = filepath.Join(fulldisk.Mount(t, size), "data")
	settings = append([]string{"log.segment.bytes=1048576", "log.segment.delete.delay.ms=0"}, extra...)
	p = startServer(t, dir, settings...)
	createTopic(t, p.addr, "full", 1)
	createTopic(t, p.addr, "spare", 1)
	spare = produceUntilFull(t, p.addr, "spare", 4<<20)
	acked = produceUntilFull(t, p.addr, "full", -1)
	if len(spare) == 0 || len(acked) == 0 {
		t.Fatalf("%d and %d records acknowledged before the disk filled", len(spare), len(acked))
	}
	return dir, settings, p, spare, acked
}

// alterConfigs changes a config of topic n times: n metadata log writes.
func alterConfigs(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for i := range n {
		v := fmt.Sprint(3_600_000 + i)
		resp, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "retention.ms", Value: &v}}, topic)
		if err == nil {
			err = resp[0].Err
		}
		if err != nil {
			t.Fatalf("metadata write %d below the floor: %v", i, err)
		}
	}
}

// produceUntilFull produces 1 KiB records to topic, 64 at a time, until limit bytes were
// acknowledged or (limit < 0) the broker refuses them with KAFKA_STORAGE_ERROR, and returns
// the values of the acknowledged records.
func produceUntilFull(t *testing.T, addr, topic string, limit int) []string {
	return produceSizedUntilFull(t, addr, topic, limit, 1000)
}

// produceSizedUntilFull is produceUntilFull with records of about pad bytes.
func produceSizedUntilFull(t *testing.T, addr, topic string, limit, pad int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []string
	padding := strings.Repeat("x", pad)
	for i := 0; limit < 0 || len(acked)*(pad+24) < limit; {
		recs := make([]*kgo.Record, 64)
		for j := range recs {
			recs[j] = &kgo.Record{Value: []byte(fmt.Sprintf("%s-%08d-%s", topic, i, padding))}
			i++
		}
		full := false
		for _, r := range cl.ProduceSync(context.Background(), recs...) {
			switch {
			case r.Err == nil:
				acked = append(acked, string(r.Record.Value))
			case errors.Is(r.Err, kerr.KafkaStorageError):
				full = true
			default:
				t.Fatalf("producing to %s: %v", topic, r.Err)
			}
		}
		if full {
			if limit >= 0 {
				t.Fatalf("the disk filled after %d records to %s", len(acked), topic)
			}
			return acked
		}
	}
	return acked
}

// produceRawRecord sends one 64 KiB record (too large for what a full disk leaves in the
// segment's last page) to partition 0 of topic and returns the partition's answer, whose
// ErrorMessage franz-go's producer does not expose.
func produceRawRecord(t *testing.T, addr, topic string) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := kmsg.Record{Value: make([]byte, 64<<10)}
	b := kmsg.RecordBatch{Magic: 2, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: rec.AppendTo(nil)}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], records.ComputeCRC(raw))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// checkRecords consumes topic and checks that it holds exactly the values want, in order.
func checkRecords(t *testing.T, addr, topic string, want []string) {
	t.Helper()
	got := consumeAll(t, addr, topic)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d records, want %d", topic, len(got), len(want))
	}
	for i, r := range got {
		if string(r.Value) != want[i] {
			t.Fatalf("%s record %d is %.20q, want %.20q", topic, i, r.Value, want[i])
		}
	}
}

// checkLogDirUsage checks DescribeLogDirs' volume sizes (v4+) on a full filesystem of total
// bytes: all of it, and less than one 64 KiB batch usable.
func checkLogDirUsage(t *testing.T, addr string, total int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	dirs, err := kadm.NewClient(cl).DescribeAllLogDirs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dirs.Each(func(d kadm.DescribedLogDir) {
		n++
		if d.TotalBytes != total || d.UsableBytes < 0 || d.UsableBytes >= 64<<10 {
			t.Errorf("log dir %s: total %d usable %d bytes; want %d and under 64 KiB", d.Dir, d.TotalBytes, d.UsableBytes, total)
		}
	})
	if n != 1 {
		t.Fatalf("%d log dirs described, want 1", n)
	}
}
