package broker_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/internal/wire"
)

// produceUpdates writes updates records over keys keys to partition 0 of topic, then the
// end record (endKey), and returns each key's last value.
func produceUpdates(t *testing.T, n *testcluster.Node, topic string, keys, updates int) map[string]string {
	t.Helper()
	cl := newClient(t, n, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	defer cl.Close()
	want := map[string]string{}
	var rs []*kgo.Record
	for i := 0; i < updates; i++ {
		k, v := fmt.Sprintf("key-%04d", i%keys), fmt.Sprintf("value-%06d", i)
		want[k] = v
		rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	rs = append(rs, &kgo.Record{Key: []byte(endKey), Value: []byte("end")})
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want
}

// waitAllSealed waits until every record of partition 0 of topic is in a sealed segment (the
// active one is empty; segments roll by time, segment.ms, on the retention pass), so that one
// cleaning leaves one record per key.
func waitAllSealed(t *testing.T, n *testcluster.Node, topic string) {
	t.Helper()
	testcluster.PollUntil(t, 30*time.Second, "every record of "+topic+" in a sealed segment", func() (bool, string) {
		logs, _ := filepath.Glob(filepath.Join(n.Dir, topic+"-0", "*.log"))
		if len(logs) < 2 {
			return false, fmt.Sprintf("%d segments", len(logs))
		}
		fi, err := os.Stat(logs[len(logs)-1]) // Glob sorts: the newest segment is last
		return err == nil && fi.Size() == 0, fmt.Sprintf("%d segments, active: %v %v", len(logs), fi, err)
	})
}

// checkLatest reads the partition and checks it holds exactly the latest value of each key.
func checkLatest(t *testing.T, n *testcluster.Node, topic string, want map[string]string) {
	t.Helper()
	got := readPartition(t, n, topic)
	if len(got) != len(want) {
		t.Fatalf("%d records read, want %d (one per key)", len(got), len(want))
	}
	latest := latestOf(got)
	for k, v := range want {
		if r := latest[k]; r == nil || string(r.Value) != v {
			t.Fatalf("key %s: got %v, want %s", k, r, v)
		}
	}
}

// The log.cleaner.* settings Kafka reconfigures at run time change here too
// (IncrementalAlterConfigs of the broker, per broker or cluster-wide): a cleaner sleeping for
// log.cleaner.backoff.ms = 10 minutes cleans at once when the backoff is lowered, and
// log.cleaner.threads follows Kafka's bounds (half to double the threads in force).
func TestCleanerSettingsChangeAtRunTime(t *testing.T) {
	n := testcluster.Start(t, "log.cleaner.backoff.ms=600000", "log.retention.check.interval.ms=200")
	const topic = "cmp-runtime"
	createTopic(t, n, topic, 1, compactedTopicConfigs("86400000"))
	want := produceUpdates(t, n, topic, 100, 5000)
	ckpt := filepath.Join(n.Dir, topic+"-0", "cleaner-checkpoint")
	// The cleaner found nothing at its start and sleeps for 10 minutes: nothing is cleaned.
	time.Sleep(time.Second)
	if _, err := os.Stat(ckpt); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cleaned with a 10-minute backoff before the change (stat: %v)", err)
	}
	adm := newAdmin(t, n)
	set := func(name, value string, broker ...int32) (error, string) {
		resps, err := adm.AlterBrokerConfigs(ctxT(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &value}}, broker...)
		if err != nil {
			t.Fatal(err)
		}
		return resps[0].Err, resps[0].ErrMessage
	}
	if err, msg := set("log.cleaner.backoff.ms", "100"); err != nil { // cluster-wide default
		t.Fatalf("setting log.cleaner.backoff.ms: %v %s", err, msg)
	}
	testcluster.PollUntil(t, 30*time.Second, "the cleaner to clean after its backoff was lowered", func() (bool, string) {
		_, err := os.Stat(ckpt)
		return err == nil, fmt.Sprint(err)
	})
	testcluster.PollUntil(t, 30*time.Second, "one record per key", func() (bool, string) {
		got := readPartition(t, n, topic)
		return len(got) == len(want), fmt.Sprintf("%d records", len(got))
	})
	checkLatest(t, n, topic, want)
	if got := n.Server().Replicas().CleanerConfig().Backoff; got != 100*time.Millisecond {
		t.Errorf("cleaner backoff %v, want 100ms", got)
	}

	// log.cleaner.threads: Kafka's bounds against the threads in force (1).
	for _, tc := range []struct {
		value string
		err   *kerr.Error
		msg   string
	}{
		{"0", kerr.InvalidConfig, "Log cleaner threads should be at least 1"},
		{"3", kerr.InvalidConfig, "Log cleaner threads cannot be increased to more than double the current value 1"},
		{"2", nil, ""},
	} {
		err, msg := set("log.cleaner.threads", tc.value, 1)
		if tc.err == nil && err != nil || tc.err != nil && (!errors.Is(err, tc.err) || !strings.Contains(msg, tc.msg)) {
			t.Errorf("log.cleaner.threads=%s: got %v %q, want %v %q", tc.value, err, msg, tc.err, tc.msg)
		}
	}
	testcluster.PollUntil(t, 10*time.Second, "2 cleaner threads", func() (bool, string) {
		c := n.Server().Replicas().CleanerConfig()
		return c.Threads == 2, fmt.Sprint(c.Threads)
	})
	// The per-broker value wins over the cluster-wide one.
	if err, msg := set("log.cleaner.io.max.bytes.per.second", "1048576", 1); err != nil {
		t.Fatalf("%v %s", err, msg)
	}
	if err, msg := set("log.cleaner.io.max.bytes.per.second", "2097152"); err != nil {
		t.Fatalf("%v %s", err, msg)
	}
	testcluster.PollUntil(t, 10*time.Second, "the broker's own I/O budget", func() (bool, string) {
		c := n.Server().Replicas().CleanerConfig()
		return c.IOMaxBytesPerSecond == 1048576, fmt.Sprint(c.IOMaxBytesPerSecond)
	})
}

// After a restart, a compacted log is cleaned without waiting for its first use: logs open
// on first use, and the cleaner opens those of compacted topics itself. Here nothing uses the
// partition after the restart and the retention pass (which opens every log) is an hour away.
func TestCleanerOpensCompactedLogsAfterRestart(t *testing.T) {
	n := testcluster.Start(t, "log.cleaner.enable=false", "log.cleaner.backoff.ms=100",
		"log.retention.check.interval.ms=200")
	const topic = "cmp-restart"
	createTopic(t, n, topic, 1, compactedTopicConfigs("86400000"))
	want := produceUpdates(t, n, topic, 100, 5000)
	waitAllSealed(t, n, topic)
	n.Set("log.cleaner.enable=true")
	n.Set("log.retention.check.interval.ms=3600000")
	n.Restart()
	ckpt := filepath.Join(n.Dir, topic+"-0", "cleaner-checkpoint")
	testcluster.PollUntil(t, 30*time.Second, "the cleaner to clean the unused log", func() (bool, string) {
		_, err := os.Stat(ckpt)
		return err == nil, fmt.Sprint(err)
	})
	checkLatest(t, n, topic, want)
}

// A log the cleaner cannot clean (here a batch corrupted on disk, which the cleaner checks
// before it rebuilds a batch, so that a new CRC never hides the damage) is marked uncleanable,
// as Kafka's cleaner does: it is left alone, DescribeLogDirs says why, and the cleaner goes
// on cleaning the other logs. The metrics endpoint counts it (samsa_log_cleaner_*).
func TestCorruptLogIsUncleanable(t *testing.T) {
	n := testcluster.Start(t, "log.cleaner.enable=false", "log.cleaner.backoff.ms=100",
		"log.retention.check.interval.ms=200", "samsa.metrics.address=127.0.0.1:0")
	const bad, good = "cmp-corrupt", "cmp-sound"
	for _, topic := range []string{bad, good} {
		createTopic(t, n, topic, 1, compactedTopicConfigs("86400000"))
		produceUpdates(t, n, topic, 100, 5000)
	}
	for _, topic := range []string{bad, good} {
		waitAllSealed(t, n, topic)
	}
	n.Stop()
	// Flip a byte inside the first record of the first batch: past the 61-byte batch header.
	first := filepath.Join(n.Dir, bad+"-0", "00000000000000000000.log")
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 70); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 70); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n.Set("log.cleaner.enable=true")
	n.Restart()
	testcluster.PollUntil(t, 30*time.Second, "the sound log cleaned", func() (bool, string) {
		_, err := os.Stat(filepath.Join(n.Dir, good+"-0", "cleaner-checkpoint"))
		return err == nil, fmt.Sprint(err)
	})
	var st wire.CleanerState
	testcluster.PollUntil(t, 30*time.Second, "the corrupt log reported uncleanable", func() (bool, string) {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		resp, err := req.RequestWith(ctxT(t), newClient(t, n))
		if err != nil {
			t.Fatal(err)
		}
		td := kadm.TopicDetail{Topic: bad, Partitions: kadm.PartitionDetails{0: {Partition: 0, Leader: 1}}}
		st = cli.CleanerStates(td, map[int32]*kmsg.DescribeLogDirsResponse{1: resp})[0]
		return st.Uncleanable != "", fmt.Sprintf("%+v", st)
	})
	if !strings.Contains(st.Uncleanable, "CRC") {
		t.Errorf("uncleanable reason %q does not name the CRC mismatch", st.Uncleanable)
	}
	m := testcluster.Scrape(t, n.Server().MetricsAddr())
	for _, c := range []struct {
		name string
		ok   func(float64) bool
		want string
	}{
		{"samsa_log_cleaner_uncleanable_partitions", func(v float64) bool { return v == 1 }, "1"},
		{"samsa_log_cleaner_last_clean_seconds", func(v float64) bool { return v > 0 }, "> 0 (the sound log's pass)"},
		{"samsa_log_cleaner_max_dirty_ratio", func(v float64) bool { return v > 0 && v <= 1 }, "in (0, 1] (the corrupt log stays dirty)"},
	} {
		if v := m.Get(c.name); !c.ok(v) {
			t.Errorf("%s: %v, want %s", c.name, v, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(n.Dir, bad+"-0", "cleaner-checkpoint")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the corrupt log was cleaned (stat: %v)", err)
	}
	var out strings.Builder
	td := kadm.TopicDetail{Topic: bad, Partitions: kadm.PartitionDetails{0: {Partition: 0, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}}}
	if err := cli.WriteTopicDescription(&out, td, nil, nil, map[int32]wire.CleanerState{0: st}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "UNCLEANABLE") || !strings.Contains(out.String(), "CRC") {
		t.Errorf("topic description does not show the uncleanable partition:\n%s", out.String())
	}
}
