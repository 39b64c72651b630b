package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestCLIEndToEnd drives the client commands in-process against an in-process single-node
// cluster: create a topic, produce keyed lines, consume them back in several ways, describe,
// alter configs and delete.
func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	node := testcluster.Start(t)
	brokers := "--brokers=" + node.Addr()
	run := func(stdin string, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, err := runCLI(t, stdin, append(args, brokers)...)
		if err != nil {
			t.Fatalf("samsa %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
		}
		return stdout, stderr
	}
	runErr := func(stdin string, args ...string) error {
		t.Helper()
		_, _, err := runCLI(t, stdin, append(args, brokers)...)
		if err == nil {
			t.Fatalf("samsa %s succeeded, want an error", strings.Join(args, " "))
		}
		return err
	}
	lines := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
	}

	// Create.
	out, _ := run("", "topic", "create", "orders", "--partitions", "3", "--replication-factor", "1",
		"--config", "retention.ms=3600000")
	if want := "created topic orders (partitions: 3, replication factor: 1)\n"; out != want {
		t.Errorf("create: got %q, want %q", out, want)
	}
	if err := runErr("", "topic", "create", "orders"); !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Errorf("create twice: error %q, want TOPIC_ALREADY_EXISTS", err)
	}

	// List.
	out, _ = run("", "topic", "list")
	if !slices.ContainsFunc(lines(out), func(l string) bool { return slices.Equal(strings.Fields(l), []string{"orders", "3", "1"}) }) {
		t.Errorf("list: no row \"orders 3 1\" in:\n%s", out)
	}

	// Produce keyed lines, each key twice, so that the key-to-partition mapping can be checked.
	before := time.Now().Add(-time.Second).UnixMilli()
	var input strings.Builder
	var want []string
	for round := range 2 {
		for k := range 10 {
			fmt.Fprintf(&input, "key%d:value%d-%d\n", k, k, round)
			want = append(want, fmt.Sprintf("key%d=value%d-%d src=cli orders", k, k, round))
		}
	}
	_, errOut := run(input.String(), "produce", "orders", "--key-separator", ":", "--header", "src=cli")
	if errOut != "produced 20 records\n" {
		t.Errorf("produce: stderr %q, want %q", errOut, "produced 20 records\n")
	}

	// Consume everything from the beginning.
	out, errOut = run("", "consume", "orders", "--from", "beginning", "--count", "20", "--format", `%k=%v %h %T`)
	got := lines(out)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("consume: got %q, want %q", got, want)
	}
	if errOut != "consumed 20 records\n" {
		t.Errorf("consume: stderr %q", errOut)
	}

	// Keys hash to one partition each, and offsets per partition are dense from 0.
	out, _ = run("", "consume", "orders", "--from", "beginning", "--count", "20", "--format", `%k\t%p\t%o`)
	keyPartition := map[string]string{}
	perPartition := map[string][]int{}
	for _, l := range lines(out) {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("consume: bad line %q", l)
		}
		if p, ok := keyPartition[f[0]]; ok && p != f[1] {
			t.Errorf("key %s is in partitions %s and %s", f[0], p, f[1])
		}
		keyPartition[f[0]] = f[1]
		o, _ := strconv.Atoi(f[2])
		perPartition[f[1]] = append(perPartition[f[1]], o)
	}
	for p, offsets := range perPartition {
		slices.Sort(offsets)
		for i, o := range offsets {
			if o != i {
				t.Errorf("partition %s offsets %v are not 0..%d", p, offsets, len(offsets)-1)
				break
			}
		}
	}

	// One partition, from an offset, ending on the idle timeout.
	p0 := len(perPartition["0"])
	out, _ = run("", "consume", "orders", "--partition", "0", "--from", "offset:1", "--timeout", "1s", "--format", "%p")
	if got := lines(out); len(got) != max(p0-1, 0) || slices.ContainsFunc(got, func(l string) bool { return l != "0" }) {
		t.Errorf("consume partition 0 from offset 1: got %q, want %d lines of 0", got, max(p0-1, 0))
	}

	// From a timestamp, and from the end (nothing new arrives).
	out, _ = run("", "consume", "orders", "--from", "timestamp:"+strconv.FormatInt(before, 10), "--count", "20")
	if n := len(lines(out)); n != 20 {
		t.Errorf("consume from timestamp: got %d records, want 20", n)
	}
	out, _ = run("", "consume", "orders", "--from", "end", "--timeout", "500ms")
	if out != "" {
		t.Errorf("consume from end: got %q, want nothing", out)
	}

	// Every codec and acks level, to an explicit partition.
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for i, codec := range codecs {
		acks := []string{"all", "1"}[i%2]
		_, errOut := run("c-"+codec+"\n", "produce", "orders", "--partition", "2", "--compression", codec, "--acks", acks)
		if errOut != "produced 1 records\n" {
			t.Errorf("produce with %s: stderr %q", codec, errOut)
		}
	}
	p2 := len(perPartition["2"])
	out, _ = run("", "consume", "orders", "--partition", "2", "--from", "offset:"+strconv.Itoa(p2), "--count", strconv.Itoa(len(codecs)))
	if got, want := lines(out), []string{"c-none", "c-gzip", "c-snappy", "c-lz4", "c-zstd"}; !slices.Equal(got, want) {
		t.Errorf("consume codecs: got %q, want %q", got, want)
	}

	// acks=0 returns once the request is written; the record still arrives.
	if _, errOut := run("zero-acks\n", "produce", "orders", "--partition", "1", "--acks", "0"); errOut != "produced 1 records\n" {
		t.Errorf("produce with acks=0: stderr %q", errOut)
	}
	p1 := len(perPartition["1"])
	out, _ = run("", "consume", "orders", "--partition", "1", "--from", "offset:"+strconv.Itoa(p1), "--count", "1", "--timeout", "10s")
	if out != "zero-acks\n" {
		t.Errorf("consume acks=0 record: got %q", out)
	}

	// Errors for a missing partition.
	if err := runErr("", "consume", "orders", "--partition", "7"); !strings.Contains(err.Error(), `topic "orders" has no partition 7`) {
		t.Errorf("consume missing partition: %v", err)
	}

	// Describe, alter, describe again.
	out, _ = run("", "topic", "describe", "orders")
	for _, s := range []string{"Topic:", "orders", "retention.ms=3600000", "PARTITION", "LEADER", "REPLICAS", "ISR"} {
		if !strings.Contains(out, s) {
			t.Errorf("describe: %q missing from:\n%s", s, out)
		}
	}
	if rows := partitionRows(out); len(rows) != 3 {
		t.Errorf("describe: %d partition rows, want 3:\n%s", len(rows), out)
	}
	out, _ = run("", "topic", "alter-config", "orders", "--set", "cleanup.policy=compact", "--delete", "retention.ms")
	if out != "altered configs of topic orders\n" {
		t.Errorf("alter-config: got %q", out)
	}
	out, _ = run("", "topic", "describe", "orders")
	if !strings.Contains(out, "cleanup.policy=compact") || strings.Contains(out, "retention.ms") {
		t.Errorf("describe after alter: want cleanup.policy=compact and no retention.ms in:\n%s", out)
	}
	if _, _, err := runCLI(t, "", "topic", "alter-config", "orders", "--set", "no.such.config=1", brokers); err == nil {
		t.Error("alter-config accepted an unknown config")
	}

	// Delete.
	out, _ = run("", "topic", "delete", "orders")
	if out != "deleted topic orders\n" {
		t.Errorf("delete: got %q", out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, _ = run("", "topic", "list")
		if !strings.Contains(out, "orders") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list after delete still shows orders:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := runErr("", "topic", "describe", "orders"); !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("describe deleted topic: %v", err)
	}
	if err := runErr("", "topic", "delete", "orders"); !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("delete twice: %v", err)
	}
}

// partitionRows returns the partition table rows of describe output (those after the header).
func partitionRows(out string) []string {
	var rows []string
	inTable := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "PARTITION":
			inTable = true
		case inTable && len(f) >= 4:
			rows = append(rows, l)
		}
	}
	return rows
}

// TestProduceAutoCreate produces to a missing topic: the broker creates it when its
// auto.create.topics.enable is true (the records are then readable), and otherwise produce
// fails saying so.
func TestProduceAutoCreate(t *testing.T) {
	tests := []struct {
		name    string
		setting string
		args    []string
		wantErr string
	}{
		{name: "enabled", setting: "auto.create.topics.enable=true"},
		{name: "enabled to one partition", setting: "auto.create.topics.enable=true", args: []string{"--partition", "0"}},
		{name: "disabled", setting: "auto.create.topics.enable=false",
			wantErr: `topic "fresh" does not exist and the broker does not create topics automatically (auto.create.topics.enable=false); create it with samsa topic create`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := "--brokers=" + testcluster.Start(t, tt.setting).Addr()
			_, stderr, err := runCLI(t, "a\nb\n", append([]string{"produce", "fresh", brokers}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("produce: error %v, want %q", err, tt.wantErr)
				}
				out, _, err := runCLI(t, "", "topic", "list", brokers)
				if err != nil || strings.Contains(out, "fresh") {
					t.Fatalf("topic list after the refused produce: %v\n%s", err, out)
				}
				return
			}
			if err != nil || stderr != "produced 2 records\n" {
				t.Fatalf("produce: %v (stderr %q)", err, stderr)
			}
			out, _, err := runCLI(t, "", "consume", "fresh", "--from", "beginning", "--count", "2", brokers)
			if err != nil || out != "a\nb\n" {
				t.Fatalf("consume: %v, got %q, want %q", err, out, "a\nb\n")
			}
		})
	}
}
