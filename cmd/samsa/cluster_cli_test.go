package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// partitionRow is one row of samsa topic describe's partition table.
type partitionRow struct {
	partition, leader string
	replicas, isr     []string
}

// parsedPartitionRows parses the partition table rows of samsa topic describe's output.
func parsedPartitionRows(out string) []partitionRow {
	var rows []partitionRow
	for _, l := range partitionRows(out) {
		f := strings.Fields(l)
		rows = append(rows, partitionRow{f[0], f[1], strings.Split(f[2], ","), strings.Split(f[3], ",")})
	}
	return rows
}

// TestClusterDescribe: samsa cluster describe against three nodes shows the cluster id, the
// three brokers with their addresses, the active controller and the quorum's three voters,
// one of them the leader; bootstrapped on any one node.
func TestClusterDescribe(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	for _, addr := range c.Addrs() {
		out, _, err := runCLI(t, "", "cluster", "describe", "--brokers", addr)
		if err != nil {
			t.Fatalf("cluster describe via %s: %v", addr, err)
		}
		if !strings.Contains(out, "Cluster ID:         "+c.ClusterID+"\n") {
			t.Errorf("no cluster id %s in:\n%s", c.ClusterID, out)
		}
		for i, a := range c.Addrs() {
			if !regexp.MustCompile(fmt.Sprintf(`(?m)^  %d +%s +- *$`, i+1, regexp.QuoteMeta(a))).MatchString(out) {
				t.Errorf("no row for broker %d at %s (no rack) in:\n%s", i+1, a, out)
			}
		}
		m := regexp.MustCompile(`(?m)^Active controller: +(\d+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no active controller in:\n%s", out)
		}
		leader := m[1]
		if !strings.Contains(out, "  Leader:          "+leader+"\n") || !strings.Contains(out, "  Voters:          3\n") {
			t.Errorf("quorum leader %s / 3 voters not shown in:\n%s", leader, out)
		}
		var statuses []string
		for _, row := range regexp.MustCompile(`(?m)^  (\d) +(Leader|Follower) +\d+ +\d+ `).FindAllStringSubmatch(out, -1) {
			if row[2] == "Leader" && row[1] != leader {
				t.Errorf("voter %s is marked Leader, the controller is %s", row[1], leader)
			}
			statuses = append(statuses, row[2])
		}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []string{"Follower", "Follower", "Leader"}) {
			t.Errorf("voter statuses %v, want one leader and two followers, in:\n%s", statuses, out)
		}
	}
}

// TestTopicDescribeReplicated: a topic with replication factor 3 shows three replicas per
// partition, the leader among them and every replica in the ISR; after one node stops (a
// controlled shutdown, which takes it out of every ISR and moves its leaderships), describe
// shows the same replicas, leaders on the other nodes and ISRs of two, --under-replicated
// shows those partitions, and --unavailable shows none.
func TestTopicDescribeReplicated(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	brokers := strings.Join(c.Addrs(), ",")
	if _, _, err := runCLI(t, "", "topic", "create", "rf3", "--partitions", "3", "--replication-factor", "3", "--brokers", brokers); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "", "topic", "describe", "rf3", "--brokers", brokers)
	if err != nil {
		t.Fatal(err)
	}
	rows := parsedPartitionRows(out)
	if len(rows) != 3 || !strings.Contains(out, "Replication factor:  3\n") {
		t.Fatalf("want 3 partitions of replication factor 3:\n%s", out)
	}
	replicas := map[string][]string{}
	for _, r := range rows {
		if len(r.replicas) != 3 || !slices.Contains(r.replicas, r.leader) || len(r.isr) != 3 {
			t.Errorf("partition %s: replicas %v, leader %s, ISR %v; want 3 replicas, the leader among them, all in sync", r.partition, r.replicas, r.leader, r.isr)
		}
		replicas[r.partition] = r.replicas
	}
	out, _, err = runCLI(t, "", "topic", "describe", "--under-replicated", "--brokers", brokers)
	if err != nil || out != "" {
		t.Fatalf("--under-replicated with every replica in sync: err %v, output:\n%s", err, out)
	}

	c.StopNode(2)
	brokers = strings.Join(c.Addrs(), ",")
	stopped := strconv.Itoa(3)
	waitFor(t, time.Minute, "node 3 out of every ISR and leadership", func() bool {
		out, _, err = runCLI(t, "", "topic", "describe", "rf3", "--brokers", brokers)
		if err != nil {
			return false
		}
		for _, r := range parsedPartitionRows(out) {
			if r.leader == stopped || slices.Contains(r.isr, stopped) {
				return false
			}
		}
		return true
	})
	for _, r := range parsedPartitionRows(out) {
		if !slices.Equal(r.replicas, replicas[r.partition]) || len(r.isr) != 2 || !slices.Contains(r.isr, r.leader) {
			t.Errorf("partition %s after node 3 stopped: replicas %v (were %v), leader %s, ISR %v", r.partition, r.replicas, replicas[r.partition], r.leader, r.isr)
		}
	}
	out, _, err = runCLI(t, "", "topic", "describe", "--under-replicated", "--brokers", brokers)
	if err != nil {
		t.Fatal(err)
	}
	if rows := parsedPartitionRows(out); len(rows) != 3 || !strings.HasPrefix(out, "Topic:               rf3\n") {
		t.Errorf("--under-replicated: want the 3 partitions of rf3 only, got:\n%s", out)
	}
	out, _, err = runCLI(t, "", "topic", "describe", "rf3", "--unavailable", "--brokers", brokers)
	if err != nil || out != "" {
		t.Errorf("--unavailable with two nodes up: err %v, output:\n%s", err, out)
	}
}
