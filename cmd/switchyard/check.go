package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/switchyard/switchyard/config"
)

func cmdCheckConfig(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("want exactly one file: switchyard check-config FILE")
	}
	c, err := config.Load(args[0])
	if err != nil {
		return fmt.Errorf("refused:\n%w", err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d devices)\n", args[0], len(c.Devices))
	return nil
}
