package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// jsonAfter returns the line following the line header in out (the plans samsa reassign
// generate and execute print), parsed as a reassignment plan.
func jsonAfter(t *testing.T, out, header string) cli.Plan {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if l != header {
			continue
		}
		for _, next := range lines[i+1:] {
			if next == "" {
				continue
			}
			plan, err := cli.ParsePlan([]byte(next))
			if err != nil {
				t.Fatalf("the plan after %q: %v in:\n%s", header, err, out)
			}
			return plan
		}
	}
	t.Fatalf("no %q in:\n%s", header, out)
	return cli.Plan{}
}

// writePlan writes a plan file into the test's temporary directory.
func writePlan(t *testing.T, name, json string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replicasOf describes topic through the brokers with kadm and returns each partition's
// replicas (nil if the topic cannot be described).
func replicasOf(t *testing.T, brokers []string, topic string) map[int32][]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || details[topic].Err != nil {
		return nil
	}
	out := map[int32][]int32{}
	for p, pd := range details[topic].Partitions {
		out[p] = pd.Replicas
	}
	return out
}

// waitTopic waits until every running node describes topic with its partitions.
func waitTopic(t *testing.T, c *testcluster.Cluster, topic string, partitions int) {
	t.Helper()
	waitFor(t, time.Minute, "every node to know topic "+topic, func() bool {
		for _, addr := range c.Addrs() {
			if len(replicasOf(t, []string{addr}, topic)) != partitions {
				return false
			}
		}
		return true
	})
}

// TestReassignCLI, over TCP against three in-process nodes: generate proposes moving a
// topic onto brokers 2,3 (printing its current assignment), execute starts the proposal
// (printing the rollback plan), verify --wait waits until it completes, and kadm then sees
// the new replicas; errors come out with Kafka's names. Then a reassignment onto a stopped
// node is listed with its adding and removing replicas, verify fails while it is in
// progress, execute refuses to replace it without --additional, and cancel reverts it.
func TestReassignCLI(t *testing.T) {
	c := testcluster.StartCluster(t, 3)
	brokers := strings.Join(c.Addrs(), ",")
	mustRunCLI(t, "topic", "create", "mv", "--partitions", "3", "--replication-factor", "2", "--brokers", brokers)
	waitTopic(t, c, "mv", 3)
	before := replicasOf(t, c.Addrs(), "mv")

	out := mustRunCLI(t, "reassign", "generate", "--topics", "mv", "--broker-list", "2,3", "--brokers", brokers)
	current := jsonAfter(t, out, "Current partition replica assignment")
	proposed := jsonAfter(t, out, "Proposed partition reassignment configuration")
	if len(current.Partitions) != 3 || len(proposed.Partitions) != 3 {
		t.Fatalf("generate:\n%s", out)
	}
	for i, p := range proposed.Partitions {
		if !slices.Equal(current.Partitions[i].Replicas, before[p.Partition]) {
			t.Errorf("current assignment of %s: %v, kadm says %v", p.Name(), current.Partitions[i].Replicas, before[p.Partition])
		}
		if len(p.Replicas) != 2 || !slices.Contains(p.Replicas, 2) || !slices.Contains(p.Replicas, 3) {
			t.Errorf("proposed %s: %v, want 2 and 3", p.Name(), p.Replicas)
		}
	}

	plan := writePlan(t, "plan.json", proposed.JSON())
	out = mustRunCLI(t, "reassign", "execute", "--reassignment-json-file", plan, "--brokers", brokers)
	want := "Current partition replica assignment\n\n" + current.JSON() + "\n\nSave this to use as the --reassignment-json-file option during rollback\n" +
		"Successfully started partition reassignments for mv-0,mv-1,mv-2\n"
	if out != want {
		t.Errorf("execute:\n%s\nwant\n%s", out, want)
	}
	out = mustRunCLI(t, "reassign", "verify", "--reassignment-json-file", plan, "--wait", "--interval", "20ms", "--brokers", brokers)
	if strings.Count(out, " is completed.\n") != 3 {
		t.Errorf("verify --wait:\n%s", out)
	}
	waitFor(t, time.Minute, "every node to see the new replicas", func() bool {
		for _, addr := range c.Addrs() {
			got := replicasOf(t, []string{addr}, "mv")
			for _, p := range proposed.Partitions {
				if !slices.Equal(got[p.Partition], p.Replicas) {
					return false
				}
			}
		}
		return true
	})
	if out := mustRunCLI(t, "reassign", "list", "--brokers", brokers); out != "No partition reassignment in progress.\n" {
		t.Errorf("list after completion:\n%s", out)
	}

	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"unknown broker", []string{"execute", "--topic", "mv", "--partition", "0", "--replicas", "2,9"}, "reassign mv-0: INVALID_REPLICA_ASSIGNMENT"},
		{"cancel with none", []string{"cancel", "--topic", "mv", "--partition", "0"}, "cancel reassignment of mv-0: NO_REASSIGNMENT_IN_PROGRESS"},
		{"unknown topic", []string{"execute", "--topic", "nope", "--partition", "0", "--replicas", "1"}, "UNKNOWN_TOPIC_OR_PARTITION"},
		{"unknown partition", []string{"execute", "--topic", "mv", "--partition", "7", "--replicas", "1"}, "partition mv-7 does not exist"},
		{"log dir", []string{"execute", "--reassignment-json-file", writePlan(t, "dirs.json", `{"version":1,"partitions":[{"topic":"mv","partition":0,"replicas":[1],"log_dirs":["/data"]}]}`)}, `only "any" is supported`},
		{"replicas twice", []string{"execute", "--topic", "mv", "--partition", "0", "--replicas", "1,1"}, "broker 1 appears more than once"},
		{"file and topic", []string{"cancel", "--reassignment-json-file", plan, "--topic", "mv"}, "not both"},
		{"rf above the brokers", []string{"generate", "--topics", "mv", "--broker-list", "2"}, "INVALID_REPLICATION_FACTOR: Replication factor: 2 larger than available brokers: 1."},
		{"no interval", []string{"verify", "--topic", "mv", "--partition", "0", "--replicas", "1", "--wait", "--interval", "0s"}, "--interval and --timeout must be positive"},
		{"list an unknown topic", []string{"list", "--topic", "nope"}, "UNKNOWN_TOPIC_OR_PARTITION"},
		{"verify a plan not applied", []string{"verify", "--topic", "mv", "--partition", "0", "--replicas", "1,2"}, "1 of 1 partitions are not on the plan's replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, "", append(append([]string{"reassign"}, tc.args...), "--brokers", brokers)...)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err %v, want one containing %q", err, tc.err)
			}
		})
	}

	// Onto a stopped (fenced) node: cx-0 is put on 1,2 first, then asked onto 1,3.
	mustRunCLI(t, "topic", "create", "cx", "--partitions", "1", "--replication-factor", "2", "--brokers", brokers)
	waitTopic(t, c, "cx", 1)
	mustRunCLI(t, "reassign", "execute", "--topic", "cx", "--partition", "0", "--replicas", "1,2", "--brokers", brokers)
	mustRunCLI(t, "reassign", "verify", "--topic", "cx", "--partition", "0", "--replicas", "1,2", "--wait", "--interval", "20ms", "--brokers", brokers)
	c.StopNode(2)
	waitFor(t, time.Minute, "node 3 fenced", func() bool {
		b, ok := c.Server(0).Image().Brokers[3]
		return ok && b.Fenced
	})
	brokers = strings.Join(c.Addrs(), ",")
	out = mustRunCLI(t, "reassign", "execute", "--topic", "cx", "--partition", "0", "--replicas", "1,3", "--brokers", brokers)
	if !strings.Contains(out, `[{"topic":"cx","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]`) || !strings.HasSuffix(out, "Successfully started partition reassignments for cx-0\n") {
		t.Errorf("execute onto the stopped node:\n%s", out)
	}
	out = mustRunCLI(t, "reassign", "list", "--brokers", brokers)
	if want := "TOPIC  PARTITION  REPLICAS  ADDING  REMOVING\ncx     0          1,3,2     3       2\n"; out != want {
		t.Errorf("list:\n%s\nwant\n%s", out, want)
	}
	if out := mustRunCLI(t, "reassign", "list", "--topic", "mv", "--brokers", brokers); out != "No partition reassignment in progress.\n" {
		t.Errorf("list --topic mv:\n%s", out)
	}
	toStopped := writePlan(t, "cx.json", `{"version":1,"partitions":[{"topic":"cx","partition":0,"replicas":[1,3]}]}`)
	out, _, err := runCLI(t, "", "reassign", "verify", "--reassignment-json-file", toStopped, "--brokers", brokers)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 partitions still being reassigned") ||
		out != "Status of partition reassignment:\nReassignment of partition cx-0 is still in progress (replicas 1,3,2).\n" {
		t.Errorf("verify in progress: %v, output:\n%s", err, out)
	}
	if _, _, err := runCLI(t, "", "reassign", "execute", "--reassignment-json-file", toStopped, "--brokers", brokers); err == nil ||
		!strings.Contains(err.Error(), "existing partition reassignment (of cx-0); use --additional") {
		t.Errorf("execute over one in progress: %v", err)
	}
	if out := mustRunCLI(t, "reassign", "cancel", "--reassignment-json-file", toStopped, "--brokers", brokers); out != "Successfully cancelled partition reassignments for: cx-0\n" {
		t.Errorf("cancel:\n%s", out)
	}
	waitFor(t, time.Minute, "cx-0 back on 1,2", func() bool {
		for _, addr := range c.Addrs() {
			if !slices.Equal(replicasOf(t, []string{addr}, "cx")[0], []int32{1, 2}) {
				return false
			}
		}
		return true
	})
	if out := mustRunCLI(t, "reassign", "list", "--brokers", brokers); out != "No partition reassignment in progress.\n" {
		t.Errorf("list after the cancel:\n%s", out)
	}
}
