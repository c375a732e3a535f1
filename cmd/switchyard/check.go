package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/switchyard/switchyard/config"
)

// cmdCheckConfig reports every problem of a configuration file at once, one per
// line with file, line and field path (in the returned error, which run prints
// to stderr), or prints a summary of a good file.
func cmdCheckConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("want exactly one file: switchyard check-config FILE")
	}
	c, err := config.Load(args[0])
	if err != nil {
		problems := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			problems = j.Unwrap()
		}
		return fmt.Errorf("%d problem(s):\n%w", len(problems), err)
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d devices) from %d models", args[0], len(c.Devices), len(c.Models))
	if len(c.Warnings) > 0 {
		fmt.Fprintf(stdout, ", %d warning(s)", len(c.Warnings))
	}
	fmt.Fprintln(stdout)
	return nil
}
