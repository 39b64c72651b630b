package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
)

// TestGroupCommands consumes with --group, then checks describe's lag, reset-offsets (dry run
// and --execute), delete-offsets and delete against an in-process broker.
func TestGroupCommands(t *testing.T) {
	node := testcluster.Start(t, "group.initial.rebalance.delay.ms=0")
	brokers := "--brokers=" + node.Addr()
	run := func(stdin string, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, err := runCLI(t, stdin, append(args, brokers)...)
		if err != nil {
			t.Fatalf("samsa %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
		}
		return stdout, stderr
	}
	// row returns the fields of the describe row for partition p.
	row := func(out string, p int) []string {
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 5 && f[0] == "events" && f[1] == fmt.Sprint(p) {
				return f
			}
		}
		t.Fatalf("no row for partition %d in:\n%s", p, out)
		return nil
	}

	run("", "topic", "create", "events", "--partitions", "2")
	var in strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	run(in.String(), "produce", "events", "--partition", "0")
	run("v\nw\n", "produce", "events", "--partition", "1")

	// Consume 10 of the 12 records as group g1 and commit them.
	run("", "consume", "events", "--group", "g1", "--from", "beginning", "--count", "10")

	out, _ := run("", "group", "list")
	if !strings.Contains(out, "g1") {
		t.Fatalf("group list:\n%s", out)
	}
	out, _ = run("", "group", "describe", "g1")
	if !strings.Contains(out, "TOTAL LAG 2") || !strings.Contains(out, "protocol consumer,") {
		t.Fatalf("describe: want total lag 2 and protocol consumer (the group is empty):\n%s", out)
	}

	// Dry run changes nothing.
	out, errOut := run("", "group", "reset-offsets", "g1", "--topic", "events", "--to-earliest")
	if !strings.Contains(errOut, "dry run") || !strings.Contains(out, "NEW-OFFSET") {
		t.Fatalf("dry run: %q %q", out, errOut)
	}
	out, _ = run("", "group", "describe", "g1")
	if !strings.Contains(out, "TOTAL LAG 2") {
		t.Fatalf("dry run changed offsets:\n%s", out)
	}
	// Execute: back to the start, lag is everything.
	run("", "group", "reset-offsets", "g1", "--topic", "events", "--to-earliest", "--execute")
	out, _ = run("", "group", "describe", "g1")
	if !strings.Contains(out, "TOTAL LAG 12") {
		t.Fatalf("after reset to earliest:\n%s", out)
	}
	// Shift partition 0 forward by 4.
	run("", "group", "reset-offsets", "g1", "--topic", "events:0", "--shift-by", "4", "--execute")
	out, _ = run("", "group", "describe", "g1")
	if f := row(out, 0); f[2] != "4" || f[3] != "10" || f[4] != "6" {
		t.Fatalf("after shift-by 4, partition 0 row %v", f)
	}
	// To a specific offset beyond the end clamps to the end.
	run("", "group", "reset-offsets", "g1", "--topic", "events:1", "--to-offset", "99", "--execute")
	out, _ = run("", "group", "describe", "g1")
	if f := row(out, 1); f[2] != "2" || f[4] != "0" {
		t.Fatalf("after to-offset 99, partition 1 row %v", f)
	}

	run("", "group", "delete-offsets", "g1", "--topic", "events:1")
	out, _ = run("", "group", "describe", "g1")
	if f := row(out, 1); f[2] != "-" {
		t.Fatalf("after delete-offsets, partition 1 row %v", f)
	}
	// A KIP-848 member of another group reads everything and commits it.
	run("", "consume", "events", "--group", "g848", "--group-protocol", "consumer", "--from", "beginning", "--count", "12")
	out, _ = run("", "group", "describe", "g848")
	if !strings.Contains(out, "TOTAL LAG 0") || !strings.Contains(out, "protocol consumer (KIP-848") {
		t.Fatalf("KIP-848 group after consuming everything:\n%s", out)
	}

	run("", "group", "delete", "g1")
	if _, _, err := runCLI(t, "", "group", "describe", "g1", brokers); err == nil || !strings.Contains(err.Error(), `group "g1" does not exist`) {
		t.Fatalf("describe of a deleted group: %v", err)
	}
	// Offsets of a group that does not exist yet can be set, as with kafka-consumer-groups.
	run("", "group", "reset-offsets", "fresh", "--topic", "events", "--to-latest", "--execute")
	out, _ = run("", "group", "describe", "fresh")
	if f := row(out, 0); f[2] != "10" || f[4] != "0" {
		t.Fatalf("a new group's reset offsets, partition 0 row %v", f)
	}
}

// TestConsumeGroupUntilInterrupted runs `consume --group` without --count: it says on stderr
// that it runs until interrupted, prints only records on stdout, and on SIGINT exits without
// error, having committed what it printed and left the group. While it runs, describe shows
// the group's protocol and assignor.
func TestConsumeGroupUntilInterrupted(t *testing.T) {
	// Catch SIGINT in this process for the whole test, so that the signal sent below cannot
	// kill the test binary, whatever the command has registered at that moment.
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, os.Interrupt)
	defer signal.Stop(caught)

	node := testcluster.Start(t, "group.initial.rebalance.delay.ms=0")
	brokers := "--brokers=" + node.Addr()
	if _, stderr, err := runCLI(t, "a\nb\nc\n", "produce", "events", "--partition", "0", brokers); err != nil {
		t.Fatalf("produce: %v (%s)", err, stderr)
	}
	for _, tt := range []struct{ protocol, wantProtocol string }{
		{"classic", "consumer/cooperative-sticky"},
		{"consumer", "consumer (KIP-848, assignor range)"},
	} {
		protocol := tt.protocol
		t.Run(protocol, func(t *testing.T) {
			group := "until-" + protocol
			stdout, stderr := newTempOutput(t, "stdout"), newTempOutput(t, "stderr")
			done := make(chan error, 1)
			go func() {
				done <- runCLIWith(context.Background(), strings.NewReader(""), stdout, stderr,
					"consume", "events", "--group", group, "--group-protocol", protocol, "--from", "beginning", brokers)
			}()
			waitFor(t, 30*time.Second, "three records on stdout", func() bool { return stdout.contents() == "a\nb\nc\n" })
			want := "consuming as group " + group + " until interrupted (Ctrl-C); --count N stops after N records\n"
			if got := stderr.contents(); got != want {
				t.Fatalf("stderr %q, want %q", got, want)
			}
			// While the member is there, describe names the group's assignor.
			out, _, err := runCLI(t, "", "group", "describe", group, brokers)
			if err != nil || !strings.Contains(out, "(state Stable, protocol "+tt.wantProtocol+",") {
				t.Fatalf("describe: %v, want protocol %s in:\n%s", err, tt.wantProtocol, out)
			}
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("consume after SIGINT: %v (stderr %q)", err, stderr.contents())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("consume did not exit after SIGINT")
			}
			if got := stderr.contents(); got != want+"consumed 3 records\n" || stdout.contents() != "a\nb\nc\n" {
				t.Fatalf("after SIGINT: stdout %q, stderr %q", stdout.contents(), got)
			}
			waitFor(t, 10*time.Second, "the group to be empty with no lag", func() bool {
				out, _, err := runCLI(t, "", "group", "describe", group, brokers)
				return err == nil && strings.Contains(out, "state Empty") && strings.Contains(out, "TOTAL LAG 0")
			})
		})
	}
}
