// Command s3backer serves a disk whose blocks live in an S3 bucket (or, with
// --test, in a local directory), with the command line of the C s3backer.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/s3backer-go/s3backer/internal/config"
	"github.com/s3backer-go/s3backer/internal/daemon"
	"github.com/s3backer-go/s3backer/internal/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := start(args, stdin, stdout, stderr)
	if err == nil {
		return exitcode.OK
	}
	// One line per problem, each prefixed like s3backer's messages.
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "s3backer: %s\n", line)
	}
	daemon.Fail(err)
	if errors.As(err, new(exitcode.UsageError)) {
		return exitcode.Usage
	}
	return exitcode.Failure
}

// start parses the command line and runs the chosen mode.
func start(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := config.Parse(args)
	if err != nil {
		return exitcode.UsageError{Err: err}
	}
	switch cfg.Action {
	case config.ActionHelp:
		fmt.Fprint(stdout, config.Help())
		return nil
	case config.ActionVersion:
		fmt.Fprintln(stdout, config.VersionString())
		return nil
	}
	if err := cfg.CheckImplemented(); err != nil {
		return exitcode.UsageError{Err: err}
	}
	if !cfg.Quiet {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "s3backer: warning: %s\n", w)
		}
	}
	switch {
	case cfg.Erase:
		return erase(cfg, stdin, stderr)
	case cfg.ResetMountedFlag:
		return resetMountedFlag(cfg, stderr)
	case !cfg.IsNBD():
		return serveFUSE(cfg, stderr)
	}
	return serveNBD(cfg, stderr)
}
