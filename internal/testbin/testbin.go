// Package testbin builds the samsa binary once for a test package whose tests run real
// `samsa server` processes (crash tests, the fault campaign).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build builds cmd/samsa into a new temporary directory named after prefix and returns the
// binary's path and a function that removes the directory.
func Build(prefix string) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "samsa")
	build := exec.Command("go", "build", "-o", bin, "github.com/samsa-io/samsa/cmd/samsa")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building samsa: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Main builds the binary into *bin, runs the tests and exits with their code; a failed build
// exits 1. A package's TestMain calls it.
func Main(prefix string, bin *string, run func() int) {
	b, cleanup, err := Build(prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := run()
	cleanup()
	os.Exit(code)
}
