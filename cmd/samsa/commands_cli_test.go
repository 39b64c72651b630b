package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/samsa-io/samsa/internal/cli"
	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestCommandErrors checks that bad arguments and an unreachable broker fail with a one-line
// message, before or instead of talking to a broker.
func TestCommandErrors(t *testing.T) {
	down := closedAddr(t)
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{name: "create unreachable", args: []string{"topic", "create", "t", "--brokers", down},
			wantErr: "cannot reach broker " + down + ": connection refused"},
		{name: "list unreachable", args: []string{"topic", "list", "--brokers", down},
			wantErr: "cannot reach broker " + down + ": connection refused"},
		{name: "produce unreachable", stdin: "a\n", args: []string{"produce", "t", "--brokers", down},
			wantErr: "cannot reach broker " + down + ": connection refused"},
		{name: "consume unreachable", args: []string{"consume", "t", "--brokers", down},
			wantErr: "cannot reach broker " + down + ": connection refused"},
		{name: "empty brokers", args: []string{"topic", "list", "--brokers", " , "},
			wantErr: "no brokers given"},
		{name: "create zero partitions", args: []string{"topic", "create", "t", "--partitions", "0"},
			wantErr: "invalid --partitions 0"},
		{name: "create bad replication factor", args: []string{"topic", "create", "t", "--replication-factor", "-2"},
			wantErr: "invalid --replication-factor -2"},
		{name: "create bad config", args: []string{"topic", "create", "t", "--config", "retention.ms"},
			wantErr: `--config: invalid "retention.ms": expected key=value`},
		{name: "create without name", args: []string{"topic", "create"},
			wantErr: "accepts 1 arg(s), received 0"},
		{name: "alter nothing", args: []string{"topic", "alter-config", "t"},
			wantErr: "nothing to alter"},
		{name: "produce bad acks", args: []string{"produce", "t", "--acks", "2"},
			wantErr: `--acks: invalid acks "2"`},
		{name: "produce bad compression", args: []string{"produce", "t", "--compression", "brotli"},
			wantErr: `--compression: invalid compression "brotli"`},
		{name: "produce bad header", args: []string{"produce", "t", "--header", "nokey"},
			wantErr: `--header: invalid "nokey"`},
		{name: "consume bad from", args: []string{"consume", "t", "--from", "offset:-3"},
			wantErr: `--from: invalid start "offset:-3"`},
		{name: "consume bad format", args: []string{"consume", "t", "--format", "%q"},
			wantErr: "--format: invalid format"},
		{name: "consume negative count", args: []string{"consume", "t", "--count", "-1"},
			wantErr: "invalid --count -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.stdin, tt.args...)
			if err == nil {
				t.Fatalf("succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestConfigAlterations(t *testing.T) {
	type alter struct {
		op    kadm.IncrementalOp
		name  string
		value string
	}
	tests := []struct {
		name    string
		sets    []string
		deletes []string
		want    []alter
		wantErr string
	}{
		{name: "set and delete", sets: []string{"retention.ms=1000", "cleanup.policy=compact"}, deletes: []string{"segment.bytes"},
			want: []alter{{kadm.SetConfig, "retention.ms", "1000"}, {kadm.SetConfig, "cleanup.policy", "compact"}, {kadm.DeleteConfig, "segment.bytes", ""}}},
		{name: "delete only", deletes: []string{"a"}, want: []alter{{kadm.DeleteConfig, "a", ""}}},
		{name: "nothing", wantErr: "nothing to alter"},
		{name: "set twice", sets: []string{"a=1", "a=2"}, wantErr: `config "a" given more than once`},
		{name: "set and delete same", sets: []string{"a=1"}, deletes: []string{"a"}, wantErr: `config "a" given more than once`},
		{name: "malformed set", sets: []string{"a"}, wantErr: "--set: "},
		{name: "empty delete", deletes: []string{""}, wantErr: "empty config name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configAlterations(tt.sets, tt.deletes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var flat []alter
			for _, a := range got {
				v := ""
				if a.Value != nil {
					v = *a.Value
				}
				flat = append(flat, alter{a.Op, a.Name, v})
			}
			if !reflect.DeepEqual(flat, tt.want) {
				t.Errorf("got %+v, want %+v", flat, tt.want)
			}
		})
	}
}

// TestCommandsRegistered checks that init wired every client command into the real root.
func TestCommandsRegistered(t *testing.T) {
	for _, path := range [][]string{
		{"topic", "create"}, {"topic", "list"}, {"topic", "describe"}, {"topic", "delete"},
		{"topic", "alter-config"}, {"produce"}, {"consume"},
		{"user", "create"}, {"user", "list"}, {"user", "delete"},
		{"quota", "set"}, {"quota", "list"}, {"quota", "delete"},
		{"reassign", "generate"}, {"reassign", "execute"}, {"reassign", "list"}, {"reassign", "verify"}, {"reassign", "cancel"},
	} {
		cmd, _, err := rootCmd.Find(path)
		if err != nil || cmd.Name() != path[len(path)-1] {
			t.Errorf("samsa %s is not registered (err %v)", strings.Join(path, " "), err)
		}
	}
}

// TestBrokersFromEnv checks that $SAMSA_BROKERS gives the brokers when --brokers is not set,
// and that --brokers wins over it.
func TestBrokersFromEnv(t *testing.T) {
	node := testcluster.Start(t)
	down := closedAddr(t)
	tests := []struct {
		name    string
		env     string
		args    []string
		wantErr string
	}{
		{name: "env", env: node.Addr(), args: []string{"topic", "list"}},
		{name: "flag wins over env", env: down, args: []string{"topic", "list", "--brokers", node.Addr()}},
		{name: "flag wins over env, group subcommand", env: down, args: []string{"group", "list", "--brokers", node.Addr()}},
		{name: "env unreachable", env: down, args: []string{"produce", "t"},
			wantErr: "cannot reach broker " + down + ": connection refused"},
		{name: "env without brokers", env: " , ", args: []string{"consume", "t"},
			wantErr: `$SAMSA_BROKERS=" , ": no brokers given`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(cli.BrokersEnv, tt.env)
			_, stderr, err := runCLI(t, "", tt.args...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("samsa %s: %v (stderr %q)", strings.Join(tt.args, " "), err, stderr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestBrokersHelp checks that the --help of every client command mentions $SAMSA_BROKERS.
func TestBrokersHelp(t *testing.T) {
	var leaves [][]string
	var walk func(cmd *cobra.Command, path []string)
	local := [][]string{{"cluster", "start"}, {"cluster", "stop"}, {"cluster", "status"}} // processes on this machine, --dir
	walk = func(cmd *cobra.Command, path []string) {
		if cmd.Runnable() && !slices.ContainsFunc(local, func(l []string) bool { return slices.Equal(l, path) }) {
			leaves = append(leaves, path)
		}
		for _, c := range cmd.Commands() {
			walk(c, append(slices.Clip(path), c.Name()))
		}
	}
	walk(newTestRoot(), nil)
	if len(leaves) < 10 {
		t.Fatalf("only %d client commands found: %v", len(leaves), leaves)
	}
	for _, path := range leaves {
		stdout, _, err := runCLI(t, "", append(path, "--help")...)
		if err != nil {
			t.Fatalf("samsa %s --help: %v", strings.Join(path, " "), err)
		}
		if !strings.Contains(stdout, "--brokers") || !strings.Contains(stdout, "$SAMSA_BROKERS") {
			t.Errorf("samsa %s --help does not mention $SAMSA_BROKERS:\n%s", strings.Join(path, " "), stdout)
		}
	}
}

// TestCompactedTopicCommands: creating and altering compacted topics prints no broker
// warning now that the cleaner compacts, and `topic describe` of a compacted topic shows the
// cleaner's state of each partition (Samsa's tagged field of DescribeLogDirs); a delete topic
// shows no such columns.
func TestCompactedTopicCommands(t *testing.T) {
	node := testcluster.Start(t)
	for _, args := range [][]string{
		{"topic", "create", "compacted", "--config", "cleanup.policy=compact"},
		{"topic", "create", "plain"},
		{"topic", "alter-config", "plain", "--set", "cleanup.policy=compact,delete"},
		{"topic", "alter-config", "plain", "--set", "cleanup.policy=delete"},
	} {
		_, stderr, err := runCLI(t, "", append(args, "--brokers", node.Addr())...)
		if err != nil || strings.Contains(stderr, "broker: warning") {
			t.Fatalf("samsa %s: %v, stderr %q", strings.Join(args, " "), err, stderr)
		}
	}
	for topic, want := range map[string]bool{"compacted": true, "plain": false} {
		stdout, _, err := runCLI(t, "", "topic", "describe", topic, "--brokers", node.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(stdout, "DIRTY") && strings.Contains(stdout, "CLEANED TO"); got != want {
			t.Errorf("describe %s: cleaner columns %v, want %v:\n%s", topic, got, want, stdout)
		}
	}
}

// TestProduceGivesUpWithTheBrokersReason checks that `samsa produce` to a broker that keeps
// refusing writes (its disk below the free-space floor) fails after its retries with the
// broker's reason, instead of retrying forever.
func TestProduceGivesUpWithTheBrokersReason(t *testing.T) {
	node := testcluster.Start(t)
	if _, _, err := runCLI(t, "", "topic", "create", "full", "--brokers", node.Addr()); err != nil {
		t.Fatal(err)
	}
	node.Set("samsa.log.dir.min.free.bytes=9223372036854775807") // no disk has that much free
	node.Restart()
	_, _, err := runCLI(t, "x\n", "produce", "full", "--retries", "1", "--brokers", node.Addr())
	if err == nil || !strings.Contains(err.Error(), "KAFKA_STORAGE_ERROR") {
		t.Fatalf("produce to a broker refusing writes: %v, want a KAFKA_STORAGE_ERROR failure", err)
	}
}
