package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/switchyard/switchyard/config"
)

// cmdCheckConfig prints every problem of a configuration file at once, one per
// line with file, line and field path, or a summary of a good file.
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
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}
		return fmt.Errorf("%s: %d problem(s)", args[0], len(problems))
	}
	fmt.Fprintf(stdout, "%s: ok (%d devices, %d models)\n", args[0], len(c.Devices), len(c.Models))
	return nil
}
