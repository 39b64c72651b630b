package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// newTestRoot returns a fresh command tree with the client subcommands, so each in-process
// run starts from default flag values (the package-level rootCmd keeps flag state).
func newTestRoot() *cobra.Command {
	root := &cobra.Command{Use: "samsa", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newTopicCmd(), newProduceCmd(), newConsumeCmd(), newGroupCmd(), newPerfCmd(), newClusterCmd(), newTxnCmd(), newUserCmd(), newACLCmd(), newQuotaCmd(), newTokenCmd(), newReassignCmd())
	return root
}

// mustRunCLI runs one samsa command line with no stdin and returns its stdout, failing the test
// if the command fails.
func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatalf("samsa %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// runCLI runs one samsa command line in-process with stdin, returning stdout, stderr and the
// error main would print.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = runCLIWith(ctx, strings.NewReader(stdin), &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

// runCLIWith runs one samsa command line in-process with the given standard streams.
func runCLIWith(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args ...string) error {
	root := newTestRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// tempOutput is a file in the test's temporary directory for a command running in the
// background to write to while the test reads what it wrote so far with contents.
type tempOutput struct {
	t *testing.T
	*os.File
}

func newTempOutput(t *testing.T, name string) tempOutput {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return tempOutput{t: t, File: f}
}

func (o tempOutput) contents() string {
	o.t.Helper()
	b, err := os.ReadFile(o.Name())
	if err != nil {
		o.t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond every 10 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// saslLogin connects to addr with the SASL mechanism and returns the error of the first request
// (nil once the login succeeded), without retries.
func saslLogin(t *testing.T, addr string, mech sasl.Mechanism) error {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.SASL(mech))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}
