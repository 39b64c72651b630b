// Command samsa is the single Samsa binary: `samsa server` runs a broker (and controller), and
// the other subcommands are client tools built on franz-go (topics, produce, consume, ...).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the top of the command tree; each subcommand registers itself from its own file
// in an init function.
var rootCmd = &cobra.Command{
	Use:           "samsa",
	Short:         "Samsa: a Kafka-compatible event streaming platform in one binary",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		os.Exit(1)
	}
}
